import Rules

/// What a request's `protocol_state` asks for. Every state Postfix sends has a meaning
/// here; anything else is `unknown` and never answered as if no rule applied.
package enum ProtocolState: Equatable, Sendable {
    /// The stage's rules run (after the stages before it that have not run yet).
    case stage(Stage)
    /// XCLIENT: a proxy in front of Postfix hands over the real client. Its connect rules
    /// run in a fresh transaction, and their verdict answers the XCLIENT command.
    case xclient
    /// VRFY and ETRN: no stage of their own; the client's connect (and HELO) verdicts
    /// answer, so a client the rules refuse cannot use them either.
    case clientQuery(String)
    case unknown(String)

    package init(_ text: String) {
        // Postfix sends upper case: match it as it is, and upper-case only anything else.
        if let known = Self.known(text) {
            self = known
        } else {
            self = Self.known(text.uppercased()) ?? .unknown(text)
        }
    }

    private static func known(_ upper: String) -> ProtocolState? {
        switch upper {
        case "CONNECT": return .stage(.connect)
        case "EHLO", "HELO": return .stage(.helo)
        case "MAIL": return .stage(.mail)
        case "RCPT": return .stage(.rcpt)
        // CHUNKING: Postfix sends BDAT where DATA would be.
        case "DATA", "BDAT": return .stage(.data)
        case "END-OF-MESSAGE": return .stage(.preq)
        case "XCLIENT": return .xclient
        case "VRFY": return .clientQuery("vrfy")
        case "ETRN": return .clientQuery("etrn")
        default: return nil
        }
    }

    /// Every `stage` label of the request metrics: the stages, then the other states.
    static let metricLabels = Stage.allCases.map(\.rawValue) + ["xclient", "vrfy", "etrn", "unknown"]

    /// The position of the state's label in `metricLabels`, for handles kept in an array.
    var metricIndex: Int {
        let stages = Stage.allCases.count
        switch self {
        case .stage(let stage): return stage.ordinal
        case .xclient: return stages
        case .clientQuery(let name): return name == "vrfy" ? stages + 1 : stages + 2
        case .unknown: return stages + 3
        }
    }

    /// Whether the request carries a sender Postfix knows by then.
    static func carriesSender(_ text: String) -> Bool {
        switch ProtocolState(text) {
        case .stage(let stage): return stage >= .mail
        default: return false
        }
    }
}
