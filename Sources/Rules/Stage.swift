/// The SMTP stages a rule script can attach rules to, in session order.
public enum Stage: String, CaseIterable, Sendable, Comparable, Codable {
    case connect
    case helo
    case authenticate
    case mail
    case rcpt
    case data
    case preq

    public static func < (lhs: Stage, rhs: Stage) -> Bool { lhs.ordinal < rhs.ordinal }

    /// The stage's place in session order, from 0.
    public var ordinal: Int {
        switch self {
        case .connect: return 0
        case .helo: return 1
        case .authenticate: return 2
        case .mail: return 3
        case .rcpt: return 4
        case .data: return 5
        case .preq: return 6
        }
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

    /// `preq`: after the message's data, where Postfix adds no header (smtpd_end_of_data_restrictions
    /// take no `PREPEND`).
    public var isEndOfData: Bool { self == .preq }

    /// Why a header added at end of data is not on the message, and what to do instead.
    public static let endOfDataHeaderAdvice = "Postfix adds no header at end of data: add it at rcpt or data"
}

/// A value per stage, stored by ordinal: looked up on every evaluation, where hashing a
/// stage (its raw string) showed in profiles.
struct PerStage<Value> {
    private var values: [Value?] = Array(repeating: nil, count: Stage.allCases.count)

    init() {}

    subscript(stage: Stage) -> Value? {
        get { self.values[stage.ordinal] }
        set { self.values[stage.ordinal] = newValue }
    }

    /// In place: `entries[stage, default: []].append(entry)` must not copy the array each
    /// time (a script of 20,000 rules took seconds to load, quadratic in its rules).
    subscript(stage: Stage, default fallback: @autoclosure () -> Value) -> Value {
        get { self.values[stage.ordinal] ?? fallback() }
        _modify {
            var value = self.values[stage.ordinal] ?? fallback()
            // The slot lets go of the value so that it is uniquely referenced while modified.
            self.values[stage.ordinal] = nil
            defer { self.values[stage.ordinal] = value }
            yield &value
        }
    }

    /// The stages that have a value, in session order.
    var stages: [Stage] { Stage.allCases.filter { self.values[$0.ordinal] != nil } }
    var allValues: [Value] { self.values.compactMap { $0 } }
}
