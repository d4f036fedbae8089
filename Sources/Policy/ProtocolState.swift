import Rules

/// What a request's `protocol_state` asks for. Every state Postfix sends has a meaning
/// here; anything else is `unknown` and never answered as if no rule applied.
enum ProtocolState: Equatable, Sendable {
    /// The stage's rules run (after the stages before it that have not run yet).
    case stage(Stage)
    /// XCLIENT: a proxy in front of Postfix hands over the real client. Its connect rules
    /// run in a fresh transaction, and their verdict answers the XCLIENT command.
    case xclient
    /// VRFY and ETRN: no stage of their own; the client's connect (and HELO) verdicts
    /// answer, so a client the rules refuse cannot use them either.
    case clientQuery(String)
    case unknown(String)

    init(_ text: String) {
        switch text.uppercased() {
        case "CONNECT": self = .stage(.connect)
        case "EHLO", "HELO": self = .stage(.helo)
        case "MAIL": self = .stage(.mail)
        case "RCPT": self = .stage(.rcpt)
        // CHUNKING: Postfix sends BDAT where DATA would be.
        case "DATA", "BDAT": self = .stage(.data)
        case "END-OF-MESSAGE": self = .stage(.preq)
        case "XCLIENT": self = .xclient
        case "VRFY", "ETRN": self = .clientQuery(text.lowercased())
        default: self = .unknown(text)
        }
    }

    /// The `stage` label of the request metrics.
    var metricLabel: String {
        switch self {
        case .stage(let stage): return stage.rawValue
        case .xclient: return "xclient"
        case .clientQuery(let name): return name
        case .unknown: return "unknown"
        }
    }

    /// Whether the request carries a sender Postfix knows by then.
    static func carriesSender(_ text: String) -> Bool {
        ["MAIL", "RCPT", "DATA", "BDAT", "END-OF-MESSAGE"].contains(text.uppercased())
    }
}
