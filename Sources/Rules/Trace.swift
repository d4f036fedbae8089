import DNS

/// The events of one stage evaluation. Recording can be switched off (the policy server
/// does not print traces), and then no event, nor the text inside it, is ever built.
/// DNS outcomes also go to an observer (metrics) whether or not events are recorded.
struct Trace {
    let enabled: Bool
    let queryObserver: (@Sendable (DNSQuestion, String) -> Void)?
    private(set) var events: [TraceEvent] = []

    init(enabled: Bool, queryObserver: (@Sendable (DNSQuestion, String) -> Void)? = nil) {
        self.enabled = enabled
        self.queryObserver = queryObserver
    }

    mutating func record(_ event: @autoclosure () -> TraceEvent) {
        if self.enabled { self.events.append(event()) }
    }

    mutating func recordQueries(_ questions: [DNSQuestion], _ results: [DNSQueryResult]) {
        for (question, result) in zip(questions, results) { self.recordQuery(question, result) }
    }

    mutating func recordQuery(_ question: DNSQuestion, _ result: DNSQueryResult) {
        let outcome: String
        let records: Int
        switch result {
        case .success(let answer):
            outcome = answer.outcome.rawValue
            records = answer.records.count
        case .failure(let error):
            outcome = error.kind.rawValue
            records = 0
        }
        self.queryObserver?(question, outcome)
        if self.enabled {
            self.events.append(.dnsQuery(question: question.description, outcome: outcome, records: records, cached: false,
                                         security: Self.security(of: result)))
        }
    }

    /// What the trace says about an answer's DNSSEC status: nil for a plain unvalidated one.
    static func security(of result: DNSQueryResult) -> DNSSecurity? {
        switch result {
        case .success(let answer):
            return answer.security == .insecure ? nil : answer.security
        case .failure(let error):
            if let security = error.security { return security }
            return error.kind == .bogus ? DNSSecurity(.bogus, reason: error.detail) : nil
        }
    }
}
