import DNS
import Foundation
import Lua
import Policy
import Rules

/// What a stage is expected to end in.
public enum StageExpectation: Hashable, Sendable, CustomStringConvertible {
    case kind(VerdictKind)
    /// `"550 5.7.25"` or `"550 5.7.25 Reverse DNS validation failed"`.
    case reply(code: Int, enhanced: String, text: String?)
    /// The session must stop before this stage.
    case notRun

    init?(_ text: String) {
        switch text {
        case "accept": self = .kind(.accept)
        case "next": self = .kind(.next)
        case "defer": self = .kind(.defer_)
        case "reject": self = .kind(.reject)
        case "not run": self = .notRun
        default:
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, let code = Int(parts[0]), (200...599).contains(code),
                  parts[1].range(of: #"^[245]\.\d{1,3}\.\d{1,3}$"#, options: .regularExpression) != nil else { return nil }
            self = .reply(code: code, enhanced: parts[1], text: parts.count > 2 ? parts[2] : nil)
        }
    }

    func matches(_ result: StageResult?) -> Bool {
        guard let result else { return self == .notRun }
        switch self {
        case .notRun: return false
        case .kind(let kind): return result.verdict.kind == kind
        case .reply(let code, let enhanced, let text):
            let reply = result.reply
            guard reply.code == code && reply.enhanced == enhanced else { return false }
            guard let text else { return true }
            // The text as vrules serve sends it: a reply Postfix never sees does not pass.
            if let sent = PolicyReplyText.changedLine(for: reply) { return sent == "\(code) \(enhanced) \(text)" }
            return reply.text == text
        }
    }

    public var description: String {
        switch self {
        case .kind(let kind): return kind.rawValue
        case .reply(let code, let enhanced, let text): return "\(code) \(enhanced)" + (text.map { " " + $0 } ?? "")
        case .notRun: return "not run"
        }
    }
}

/// One request of a test's `requests`: the attributes as Postfix sends them, and the
/// answer (`action=` line) `vrules serve` must give it.
public struct ExpectedAnswer: Sendable {
    public var attributes: [String: String]
    public var answer: String
    /// `vars`: what the transaction's `ctx.vars` must hold after the answer.
    public var vars: [String: String]?
}

/// One test of a test file: a session, its DNS, and what each stage must end in; or, for a
/// test of `requests`, Postfix's requests and the answer each must get.
public struct RuleTestCase: Sendable {
    public var name: String
    public var session: SimulatedSession
    public var records: [DNSRecord]
    public var faults: [(String, ZoneFault)]
    public var delay: Duration
    /// Per stage; for `rcpt`, one per recipient (a single value applies to all).
    public var expectations: [(Stage, [StageExpectation])]
    public var vars: [String: String]
    public var logs: [String]
    /// Headers the message must carry: each a text a header line (`Name: value`) contains.
    public var headers: [String] = []
    /// The fixtures' `$DNSSEC` marks.
    public var security = ZoneSecurityMarks()
    /// `dnssec = { ["name/TYPE"] = "secure" }`: the status each question must have had.
    public var dnssec: [(question: String, status: DNSSecurityStatus)] = []
    /// `dns = "network"`: ask the configured resolver instead of the zone fixtures.
    public var usesNetwork: Bool
    /// `requests`: answered by a policy service as `vrules serve` answers them, in order,
    /// instead of the session (which is then empty).
    public var requests: [ExpectedAnswer] = []
}

/// A parsed `*_test.lua` file.
public struct RuleTestFile: Sendable {
    public var path: String
    public var rulesPath: String
    public var cases: [RuleTestCase]
}

public struct RuleTestFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "\(self.path): \(self.message)" }
}
