import DNS

typealias LuaThreadHandle = OpaquePointer

/// One `dns.*` (or `spf.*`) call as a value: the lookup plan it runs, and how its result is
/// described in a trace and handed to Lua. A conforming type holds the checked arguments of
/// one call; its methods are plain (no closures), so a call answered from immediate data
/// allocates nothing of its own.
protocol DNSFunctionCall {
    associatedtype Plan: DNSLookupPlan
    /// The function's name as rules write it.
    var function: String { get }
    /// What the call was asked about, for traces and failures (written only when needed).
    var argument: String { get }
    func makePlan() -> Plan
    /// A one-line summary of the result, for traces.
    func summarize(_ output: Plan.Output) -> String
    /// The same, knowing how the plan came to it; by default `summarize(output)`.
    func summarize(_ output: Plan.Output, of plan: Plan) -> String
    /// Pushes the result onto `thread`, or returns the DNS error to raise.
    func push(_ output: Plan.Output, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError>
    /// Tells the host's observers (metrics) of the finished call; by default nothing.
    func report(_ output: Plan.Output, of plan: Plan, to host: RuleHost)
}

extension DNSFunctionCall {
    func summarize(_ output: Plan.Output, of plan: Plan) -> String { self.summarize(output) }
    func report(_ output: Plan.Output, of plan: Plan, to host: RuleHost) {}

    /// Advances `plan` with the answers at hand. Like `DNSResolving.advanceImmediately`,
    /// except that an answer whose DNSSEC validation failed reaches the plan as the error it
    /// stands for, and each batch of questions is traced.
    static func advance(_ plan: inout Plan, from step: DNSLookupStep<Plan.Output>, using resolver: any DNSResolving,
                        trace: inout Trace) -> DNSLookupStep<Plan.Output> {
        var step = step
        while case .need(let questions) = step {
            var results: [DNSQueryResult] = []
            results.reserveCapacity(questions.count)
            for question in questions {
                guard let result = resolver.immediateResult(for: question) else { return step }
                results.append(result.failingUnvalidatedAnswers)
            }
            trace.recordQueries(questions, results)
            step = plan.resume(with: results)
        }
        return step
    }

    /// Traces the finished call and pushes its result.
    func finish(_ output: Plan.Output, of plan: Plan, host: RuleHost, thread: LuaThreadHandle,
                trace: inout Trace) -> Result<Int32, DNSError> {
        trace.record(.dnsCall(function: self.function, argument: self.argument, result: self.summarize(output, of: plan)))
        self.report(output, of: plan, to: host)
        return self.push(output, host: host, thread: thread)
    }
}

/// A `dns.*` call whose coroutine yielded: it waits for answers that were not at hand.
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

/// The state of a call that yielded: the call, its plan and where the plan stands.
final class DNSCall<Call: DNSFunctionCall>: PendingDNSCall {
    private let call: Call
    private var plan: Call.Plan
    private var step: DNSLookupStep<Call.Plan.Output>

    init(_ call: Call, plan: Call.Plan, step: DNSLookupStep<Call.Plan.Output>) {
        self.call = call
        self.plan = plan
        self.step = step
    }

    var function: String { self.call.function }
    var argument: String { self.call.argument }

    var neededQuestions: [DNSQuestion]? {
        if case .need(let questions) = self.step { return questions }
        return nil
    }

    func advanceImmediately(using resolver: any DNSResolving, trace: inout Trace) {
        self.step = Call.advance(&self.plan, from: self.step, using: resolver, trace: &trace)
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
        return self.call.finish(output, of: self.plan, host: host, thread: thread, trace: &trace)
    }
}
