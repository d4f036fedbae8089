import DNS

/// A `dns.*` call in progress: the lookup plan, where it stands, and how its result is
/// handed to Lua. The engine drives it with immediate answers first and awaits the rest.
protocol PendingDNSCall: AnyObject {
    var function: String { get }
    var argument: String { get }
    /// The questions still to be answered, or nil when the lookup is finished.
    var neededQuestions: [DNSQuestion]? { get }
    func advanceImmediately(using resolver: any DNSResolving, trace: inout Trace)
    func feed(_ results: [DNSQueryResult], trace: inout Trace)
    /// Pushes the call's results onto `thread`, or returns the DNS error to raise.
    func pushResult(host: RuleHost, thread: LuaThreadHandle, trace: inout Trace) -> Result<Int32, DNSError>
}

typealias LuaThreadHandle = OpaquePointer

final class DNSCall<Plan: DNSLookupPlan>: PendingDNSCall {
    let function: String
    /// What the call was asked about, for traces and failures: written out only when one
    /// needs it (most calls never do).
    lazy var argument: String = self.describeArgument()
    private let describeArgument: () -> String
    private var plan: Plan
    private var step: DNSLookupStep<Plan.Output>
    private let push: (RuleHost, LuaThreadHandle, Plan.Output) -> Result<Int32, DNSError>
    private let summarize: (Plan.Output) -> String

    init(function: String, argument: @escaping @autoclosure () -> String, plan: Plan,
         summarize: @escaping (Plan.Output) -> String,
         push: @escaping (RuleHost, LuaThreadHandle, Plan.Output) -> Result<Int32, DNSError>) {
        self.function = function
        self.describeArgument = argument
        self.plan = plan
        self.step = self.plan.start()
        self.summarize = summarize
        self.push = push
    }

    var neededQuestions: [DNSQuestion]? {
        if case .need(let questions) = self.step { return questions }
        return nil
    }

    /// Advances with the answers at hand. Like `DNSResolving.advanceImmediately`, except that
    /// an answer whose DNSSEC validation failed reaches the plan as the error it stands for.
    func advanceImmediately(using resolver: any DNSResolving, trace: inout Trace) {
        while case .need(let questions) = self.step {
            var results: [DNSQueryResult] = []
            results.reserveCapacity(questions.count)
            for question in questions {
                guard let result = resolver.immediateResult(for: question) else { return }
                results.append(result.failingUnvalidatedAnswers)
            }
            trace.recordQueries(questions, results)
            self.step = self.plan.resume(with: results)
        }
    }

    func feed(_ results: [DNSQueryResult], trace: inout Trace) {
        guard case .need(let questions) = self.step else { return }
        let results = results.map(\.failingUnvalidatedAnswers)
        trace.recordQueries(questions, results)
        self.step = self.plan.resume(with: results)
    }

    func pushResult(host: RuleHost, thread: LuaThreadHandle, trace: inout Trace) -> Result<Int32, DNSError> {
        guard case .done(let output) = self.step else {
            preconditionFailure("DNS call pushed before it finished")
        }
        trace.record(.dnsCall(function: self.function, argument: self.argument, result: self.summarize(output)))
        return self.push(host, thread, output)
    }

}
