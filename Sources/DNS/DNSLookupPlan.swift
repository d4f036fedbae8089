/// One step of a lookup: either more questions to ask, or the final result.
public enum DNSLookupStep<Output> {
    case need([DNSQuestion])
    case done(Output)
}

/// A lookup written as a resumable state machine, so that it can be driven both
/// synchronously from immediate (cached) answers and asynchronously from the network,
/// and from a Lua coroutine that yields only when an answer is not at hand.
/// `resume(with:)` receives one result per question of the last `.need`, in order.
public protocol DNSLookupPlan {
    associatedtype Output
    mutating func start() -> DNSLookupStep<Output>
    mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output>
}

extension DNSResolving {
    /// Advances `plan` as far as immediate answers allow. Returns `.done` when finished,
    /// or `.need` with questions that must be awaited (pass their results to `plan.resume`).
    /// `observe` sees each batch of questions with its answers before the plan does.
    public func advanceImmediately<Plan: DNSLookupPlan>(
        _ plan: inout Plan, from step: DNSLookupStep<Plan.Output>,
        observe: ([DNSQuestion], [DNSQueryResult]) -> Void = { _, _ in }
    ) -> DNSLookupStep<Plan.Output> {
        var step = step
        while case .need(let questions) = step {
            var results: [DNSQueryResult] = []
            results.reserveCapacity(questions.count)
            for question in questions {
                guard let result = self.immediateResult(for: question) else { return step }
                results.append(result)
            }
            observe(questions, results)
            step = plan.resume(with: results)
        }
        return step
    }

    /// Asks every question at once and returns the results in order.
    public func resolveAll(_ questions: [DNSQuestion]) async -> [DNSQueryResult] {
        if questions.count == 1 { return [await self.resolve(questions[0])] }
        return await withTaskGroup(of: (Int, DNSQueryResult).self) { group in
            for (index, question) in questions.enumerated() {
                group.addTask { (index, await self.resolve(question)) }
            }
            var results = [DNSQueryResult?](repeating: nil, count: questions.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Runs a plan to completion, using immediate answers where available.
    public func run<Plan: DNSLookupPlan>(_ plan: Plan) async -> Plan.Output {
        var plan = plan
        var step = self.advanceImmediately(&plan, from: plan.start())
        while true {
            switch step {
            case .done(let output):
                return output
            case .need(let questions):
                let results = await self.resolveAll(questions)
                step = self.advanceImmediately(&plan, from: plan.resume(with: results))
            }
        }
    }
}
