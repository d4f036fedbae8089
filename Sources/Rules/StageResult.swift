import DNS

/// One thing that happened while a stage ran, for `vrules run`, the test harness and logs.
public enum TraceEvent: Hashable, Sendable {
    /// A rule or action finished: its decision (`next` when it did not decide).
    case rule(name: String, kind: String, decision: String)
    /// A `dns.*` call: the function, its argument and a summary of its result.
    case dnsCall(function: String, argument: String, result: String)
    /// One question a DNS call asked, and its outcome (`ok`, `nxdomain`, `nodata`, or an error
    /// kind). `security` is nil for an answer that is simply not validated (validation off, the
    /// common case); else `secure`, or why it is insecure, bogus or indeterminate.
    case dnsQuery(question: String, outcome: String, records: Int, cached: Bool, security: DNSSecurity? = nil)
    case log(level: String, rule: String?, message: String)
}

/// The end of one stage evaluation.
public struct StageResult: Sendable {
    public var stage: Stage
    public var verdict: Verdict
    /// The rule that decided, or that failed.
    public var decidedBy: String?
    /// Why the stage ended in 451 4.3.0 or 451 4.4.3 without a rule choosing so.
    public var failure: String?
    public var trace: [TraceEvent]
    /// Headers the stage's rules added to the message (`ctx.add_header`) that the
    /// transaction did not have yet. A stage that fails adds none.
    public var headers: [MessageHeader] = []

    /// The reply line the MTA would send.
    public var reply: SMTPReply {
        if let reply = self.verdict.reply { return reply }
        switch self.verdict.kind {
        case .accept, .next: return self.stage.defaultAcceptReply
        case .defer_: return ReplyCatalogue.defaultDefer
        case .reject: return ReplyCatalogue.defaultReject
        }
    }
}
