import VrulesTestSupport
import DNS
import Foundation
@testable import Policy
@testable import Rules
import Testing

/// A DNS wait leaves nothing behind: the deadline of every wait that suspended a rule is
/// forgotten when the answers come, and when the deadline itself ends the stage (before,
/// a sleep per wait outlived its answer until the stage deadline: RSS grew by hundreds of
/// MB under load with network DNS). The policy tests run serially, so the count is ours.
@Suite("DNS waits through the policy protocol")
struct DNSWaitTests {
    /// A policy server on the test rules, whose every lookup waits `delay` (so suspends the
    /// rule), and a client of it.
    static func serve(delay: Duration, stageTimeout: Double) async throws -> (ZoneResolver, PolicyServer, PolicyClient) {
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        resolver.delay = delay
        let engine = try RuleEngine(source: policyRules, path: "policy.lua", resolvers: SingleResolver(resolver),
                                    limits: RuleLimits(stageTimeout: stageTimeout), tracing: false)
        let server = PolicyServer(service: PolicyService(engine: engine, logger: .policyTests), listen: [.tcp(host: "127.0.0.1", port: 0)], logger: .policyTests)
        let port = try await server.start()[0].port!
        let client = try PolicyClient(port: port)
        client.setTimeout(seconds: 10)
        return (resolver, server, client)
    }

    /// `count` transactions of one recipient each, every one answered DUNNO, then no wait left.
    static func askRecipients(_ count: Int, of client: PolicyClient) async throws {
        for index in 0..<count {
            let attributes = request("RCPT", instance: "w\(index)", recipient: "u@x.test", extra: ["client_port": "\(index)"])
            #expect(try await ask(client, attributes) == "DUNNO")
        }
        #expect(DNSWaitDeadlines.shared.count == 0)
    }

    @Test("answered waits and waits ended by the stage deadline leave no deadline behind")
    func nothingLeftBehind() async throws {
        let (resolver, server, client) = try await Self.serve(delay: .milliseconds(5), stageTimeout: 0.3)
        try await Self.askRecipients(20, of: client)

        resolver.setFault(.delay(.seconds(60)), for: "10.2.0.192.in-addr.arpa")
        let slow = request("RCPT", instance: "slow", recipient: "u@x.test", extra: ["client_port": "99"])
        #expect(try await ask(client, slow) == "451 4.4.3 Directory server failure, try again later")
        #expect(DNSWaitDeadlines.shared.count == 0)
        await server.stop()
    }

    @Test("the deadline timer outlives an empty set until a tick finds it empty")
    func timerStopsOnAnEmptyTick() {
        let deadlines = DNSWaitDeadlines(tick: .seconds(3600))   // ticks only when the test calls
        let first = AnswerRace(questions: 1), second = AnswerRace(questions: 1)
        #expect(!deadlines.isTicking)
        deadlines.watch(first, until: .max)
        deadlines.forget(first)
        // Empty between two waits, as under load: the timer is kept for the next one.
        #expect(deadlines.isTicking)
        deadlines.watch(second, until: .max)
        deadlines.checkDeadlines()
        #expect(deadlines.isTicking)
        deadlines.forget(second)
        deadlines.checkDeadlines()
        #expect(!deadlines.isTicking)
        #expect(deadlines.count == 0)
    }

    @Test("after the policy server's last wait the deadline timer stops")
    func timerStopsWhenIdle() async throws {
        let (_, server, client) = try await Self.serve(delay: .milliseconds(2), stageTimeout: 5)
        try await Self.askRecipients(5, of: client)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while DNSWaitDeadlines.shared.isTicking && clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(!DNSWaitDeadlines.shared.isTicking)
        await server.stop()
    }
}
