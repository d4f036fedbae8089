/// The events of one stage evaluation. Recording can be switched off (the policy server
/// does not print traces), and then no event, nor the text inside it, is ever built.
struct Trace {
    let enabled: Bool
    private(set) var events: [TraceEvent] = []

    init(enabled: Bool) {
        self.enabled = enabled
    }

    mutating func record(_ event: @autoclosure () -> TraceEvent) {
        if self.enabled { self.events.append(event()) }
    }
}
