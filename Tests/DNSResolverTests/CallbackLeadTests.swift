import DNS
import DNSTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import DNSResolver

/// A lookup that leads on one server without validation starts without a task: the reactor's
/// callback reads the first reply, and anything but a settled answer goes on in a task. These
/// tests hold it to the task's results, queries and time bound, reply by reply.
@Suite("Lookups led by callback")
struct CallbackLeadTests {
    /// A script whose `n`-th query (from 0) gets `replies(n, query, overTCP)`.
    static func numbered(_ replies: @escaping @Sendable (Int, DNSMessage, Bool) -> [ScriptedAction]) -> DNSServerScript {
        let count = NIOLockedValueBox(0)
        return { query, overTCP in
            let index = count.withLockedValue { value -> Int in
                defer { value += 1 }
                return value
            }
            return replies(index, query, overTCP)
        }
    }

    /// What a result says, to compare the two paths.
    static func summary(_ result: DNSQueryResult) -> String {
        switch result {
        case .success(let answer):
            return "\(answer.outcome) \(answer.records.map { "\($0.name) \($0.ttl) \($0.data)" }) chain \(answer.chain.map { "\($0.name) \($0.data)" })"
        case .failure(let error):
            return "error \(error.kind) whole-bound \(error.usedWholeTimeBound)"
        }
    }

    static let cases: [(name: String, script: @Sendable () -> DNSServerScript)] = [
        ("an answer", { zoneScript("example.com", [a("mail.example.com", "192.0.2.25")]) }),
        ("NXDOMAIN with an SOA", { { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain, authority: [soa("example.com")]))] } }),
        ("no data and no SOA", { { query, _ in [.send(ScriptedDNSServer.reply(to: query))] } }),
        ("a CNAME chain in one reply", { { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [cname("mail.example.com", "host.example.net"),
                                                               a("host.example.net", "192.0.2.26")]))]
        } }),
        ("a CNAME leaving the server's data, its target asked next", { Self.numbered { index, query, _ in
            index == 0
                ? [.send(ScriptedDNSServer.reply(to: query, answers: [cname("mail.example.com", "host.example.net")]))]
                : [.send(ScriptedDNSServer.reply(to: query, answers: [a("host.example.net", "192.0.2.27")]))]
        } }),
        ("a CNAME loop", { { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [cname("mail.example.com", "loop.example.com"),
                                                               cname("loop.example.com", "mail.example.com")]))]
        } }),
        ("a truncated reply, then TCP", { { query, overTCP in
            overTCP ? [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.28")]))]
                : [.send(ScriptedDNSServer.reply(to: query, truncated: true))]
        } }),
        ("SERVFAIL, then an answer on the next pass", { Self.numbered { index, query, _ in
            index == 0 ? [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))]
                : [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.29")]))]
        } }),
        ("no reply, then an answer on the next pass", { Self.numbered { index, query, _ in
            index == 0 ? [] : [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.30")]))]
        } }),
        ("REFUSED on every pass", { { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .refused))] } }),
        ("no reply at all", { { _, _ in [] } }),
    ]

    @Test("the same result and the same queries as a lookup in a task", arguments: 0..<Self.cases.count)
    func sameAsTask(_ index: Int) async throws {
        let (name, script) = Self.cases[index]
        let viaTask = try await withServers([script()]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(300), attempts: 1, cacheSize: 0))
            let result = await resolver.resolve(question)
            return (Self.summary(result), servers[0].queries.map { "\($0.question.name) tcp \($0.overTCP)" })
        }
        let viaCallback = try await withServers([script()]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(300), attempts: 1, cacheSize: 0))
            let deliveries = FakeServerResolverTests.Deliveries()
            let started = NIODeadline.now()
            _ = resolver.startResolving(question, preferring: nil) { deliveries.add($0) }
            try await deliveries.wait(for: 1)
            let elapsed = NIODeadline.now() - started
            // The lookup's bound, (1 + attempts) × timeout, with room for a loaded machine.
            #expect(elapsed < .milliseconds(900), "\(name): \(elapsed)")
            #expect(deliveries.all.count == 1, "\(name)")
            return (deliveries.all.first.map(Self.summary) ?? "nothing", servers[0].queries.map { "\($0.question.name) tcp \($0.overTCP)" })
        }
        #expect(viaCallback.0 == viaTask.0, "\(name)")
        #expect(viaCallback.1 == viaTask.1, "\(name)")
    }

    /// An event loop as a task executor that can run closures, as the policy server's loops are.
    final class LoopExecutor: TaskExecutor, ClosureExecuting, @unchecked Sendable {
        let loop: any EventLoop
        init(_ loop: any EventLoop) { self.loop = loop }
        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            self.loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
        func execute(_ body: @escaping @Sendable () -> Void) { self.loop.execute(body) }
    }

    @Test("the answer is delivered on the asker's loop, not on the UDP reactor's thread")
    func deliveredOnTheAskersLoop() async throws {
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(cacheSize: 0))
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let onLoop = NIOLockedValueBox<[Bool]>([])
            let deliveries = FakeServerResolverTests.Deliveries()
            _ = resolver.startResolving(question, preferring: LoopExecutor(loop)) { result in
                onLoop.withLockedValue { $0.append(loop.inEventLoop) }
                deliveries.add(result)
            }
            try await deliveries.wait(for: 1)
            #expect(addresses(deliveries.all[0]) == ["192.0.2.25"])
            #expect(onLoop.withLockedValue { $0 } == [true])
        }
    }

    @Test("cancelled after it went on in a task: it gets a failure, the lookups that joined ask again")
    func cancelledInTask() async throws {
        // The first query is never answered (a 300 ms pass), the next ones are, after 200 ms.
        let script = Self.numbered { index, query, _ in
            index == 0 ? [] : [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.31")]),
                                     after: .milliseconds(200))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(300), attempts: 2, cacheSize: 0))
            let led = FakeServerResolverTests.Deliveries()
            let leader = resolver.startResolving(question, preferring: nil) { led.add($0) }
            try await Task.sleep(for: .milliseconds(100))
            let followed = FakeServerResolverTests.Deliveries()
            _ = resolver.startResolving(question, preferring: nil) { followed.add($0) }
            // Into the second pass (300–500 ms), which runs in the task.
            try await Task.sleep(for: .milliseconds(300))
            #expect(servers[0].queries.count == 2)
            leader.cancel()
            try await led.wait(for: 1)
            try await followed.wait(for: 1)
            #expect(led.all.count == 1 && errorKind(led.all[0]) != nil)
            #expect(followed.all.count == 1 && addresses(followed.all[0]) == ["192.0.2.31"], "\(followed.all.map(Self.summary))")
        }
    }
}
