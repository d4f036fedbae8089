/// The SMTP stages a rule script can attach rules to, in session order.
public enum Stage: String, CaseIterable, Sendable, Comparable, Codable {
    case connect
    case helo
    case authenticate
    case mail
    case rcpt
    case data
    case preq

    public static func < (lhs: Stage, rhs: Stage) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }

    /// The reply an MTA gives when the stage passes and no rule chose a reply.
    public var defaultAcceptReply: SMTPReply {
        switch self {
        case .connect: return SMTPReply(code: 220, enhanced: "2.0.0", text: "Service ready")
        case .helo: return SMTPReply(code: 250, enhanced: "2.0.0", text: "Ok")
        case .authenticate: return SMTPReply(code: 235, enhanced: "2.7.0", text: "Authentication successful")
        case .mail: return SMTPReply(code: 250, enhanced: "2.1.0", text: "Sender ok")
        case .rcpt: return SMTPReply(code: 250, enhanced: "2.1.5", text: "Recipient ok")
        case .data: return SMTPReply(code: 354, enhanced: "2.0.0", text: "Start mail input")
        case .preq: return SMTPReply(code: 250, enhanced: "2.0.0", text: "Queued")
        }
    }
}
