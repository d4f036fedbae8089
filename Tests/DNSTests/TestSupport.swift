import Testing

@testable import DNS

/// How a test drives a lookup plan: the two paths the engine uses.
enum Driver: String, CaseIterable, CustomTestStringConvertible {
    /// `advanceImmediately` only, as a rule does when every answer is at hand; the plan must finish.
    case immediate
    /// `run(_:)`, the asynchronous path.
    case async

    var testDescription: String { self.rawValue }

    /// The plan's output, or nil (with a recorded issue) when the immediate path had to wait.
    func drive<Plan: DNSLookupPlan>(
        _ plan: Plan, on resolver: some DNSResolving, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> Plan.Output? {
        switch self {
        case .async:
            return await resolver.run(plan)
        case .immediate:
            var plan = plan
            let step = resolver.advanceImmediately(&plan, from: plan.start())
            guard case .done(let output) = step else {
                Issue.record("the plan needed to wait although every answer was immediate", sourceLocation: sourceLocation)
                return nil
            }
            return output
        }
    }
}

/// A zone resolver over `text`, with `example.com` as the default origin.
func makeResolver(
    _ text: String, origin: String? = "example.com", ipStrategy: IPStrategy = .ipv4ThenIpv6, rotate: Bool = false
) throws -> ZoneResolver {
    ZoneResolver(records: try ZoneFile.parse(text, origin: origin), ipStrategy: ipStrategy, rotate: rotate)
}

func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

/// The answer of a successful query; records an issue and returns nil on failure.
func expectAnswer(_ result: DNSQueryResult?, sourceLocation: SourceLocation = #_sourceLocation) -> DNSAnswer? {
    switch result {
    case .success(let answer):
        return answer
    case .failure(let error):
        Issue.record("unexpected DNS error: \(error)", sourceLocation: sourceLocation)
        return nil
    case nil:
        Issue.record("no result", sourceLocation: sourceLocation)
        return nil
    }
}

/// The error of a failed query; records an issue and returns nil on success.
func expectFailure<Success>(_ result: Result<Success, DNSError>?, sourceLocation: SourceLocation = #_sourceLocation) -> DNSError? {
    switch result {
    case .failure(let error):
        return error
    case .success(let value):
        Issue.record("expected a DNS error, got \(value)", sourceLocation: sourceLocation)
        return nil
    case nil:
        Issue.record("no result", sourceLocation: sourceLocation)
        return nil
    }
}

/// The success value of a lookup; records an issue and returns nil on failure.
func expectSuccess<Success>(_ result: Result<Success, DNSError>?, sourceLocation: SourceLocation = #_sourceLocation) -> Success? {
    switch result {
    case .success(let value):
        return value
    case .failure(let error):
        Issue.record("unexpected DNS error: \(error)", sourceLocation: sourceLocation)
        return nil
    case nil:
        Issue.record("no result", sourceLocation: sourceLocation)
        return nil
    }
}
