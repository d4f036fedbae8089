import DNS
import DNSTestSupport
import Dispatch
import Foundation
import NIOCore
import Testing
import VrulesTestSupport
@testable import DNSResolver

/// Runs the jobs of the tasks that prefer it on one thread of its own. The suites run in
/// parallel in one process, and CPU-bound tests (the codec fuzzer) can keep both threads of
/// the cooperative pool busy for a while: a lookup measured there would time the pool's queue,
/// not the resolver.
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = DedicatedThreadExecutor()
    private let queue = DispatchQueue(label: "vrules.tests.timed-lookups", qos: .userInteractive)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The fastest of five runs of `body` in milliseconds, each on `DedicatedThreadExecutor`. A
/// lookup that waited for its timeout would take seconds every time; the best of five keeps a
/// bound of milliseconds meaningful on a loaded two-core machine, where one run can still lose
/// a few scheduler slices to other processes.
func fastestOfFive<T: Sendable>(_ body: @escaping @Sendable () async -> T, check: (T) -> Void) async -> Int64 {
    var fastest = Int64.max
    for _ in 0..<5 {
        let (value, ms) = await withTaskExecutorPreference(DedicatedThreadExecutor.shared) {
            await elapsedMilliseconds(body)
        }
        check(value)
        fastest = min(fastest, ms)
    }
    return fastest
}

/// A name server whose port is closed answers every query with an ICMP port unreachable: the
/// resolver knows at once, moves on, and reports a transient error in milliseconds. A silent
/// server still gets the whole timeout. And a lookup of both address families keeps the
/// documented worst case.
@Suite("Refused and silent name servers")
struct UnreachableServerTests {
    /// A loopback server address on which nothing listens.
    func closedServer() throws -> DNSServerAddress {
        DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: try ClosedLoopbackPort.pick())
    }

    @Test("a server on a closed port fails as a network error in under 100 ms, with timeout 2s and retries")
    func closedPortFailsAtOnce() async throws {
        let closed = try self.closedServer()
        let resolver = DNSNetworkResolver(servers: [closed], options: options(timeout: .seconds(2), attempts: 2))
        let ms = await fastestOfFive({ await resolver.resolve(question) }) { result in
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(error.kind == .network, "\(error)")
            #expect(error.detail?.contains("\(closed)") == true, "\(error)")
            #expect(error.detail?.contains("port unreachable") == true, "\(error)")
            #expect(!error.usedWholeTimeBound)
        }
        #expect(ms < 100, "took \(ms) ms")
    }

    @Test("every server refusing, each pass, several servers at once: still milliseconds", arguments: [1, 2])
    func allServersRefuse(concurrency: Int) async throws {
        let servers = try (0..<3).map { _ in try self.closedServer() }
        let resolver = DNSNetworkResolver(servers: servers,
                                          options: options(timeout: .seconds(2), attempts: 2, concurrency: concurrency))
        let ms = await fastestOfFive({ await resolver.resolve(question) }) { result in
            #expect(errorKind(result) == .network, "\(result)")
        }
        // Nine refusals (three servers, three passes), each known at once; one timeout is 2 s.
        #expect(ms < 300, "took \(ms) ms")
    }

    @Test("two servers, the first closed: the second answers without waiting", arguments: [1, 2])
    func firstClosedSecondAnswers(concurrency: Int) async throws {
        let closed = try self.closedServer()
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            let resolver = DNSNetworkResolver(servers: [closed, servers[0].address],
                                              options: options(timeout: .seconds(2), attempts: 1, concurrency: concurrency))
            let ms = await fastestOfFive({ () -> DNSQueryResult in
                resolver.cache.removeAll()
                return await resolver.resolve(question)
            }) { result in
                #expect(addresses(result) == ["192.0.2.25"], "\(result)")
                #expect((try? result.get())?.server == servers[0].address.description)
            }
            #expect(ms < 100, "took \(ms) ms")
        }
    }

    @Test("a refusal on the first pass, the next pass goes on to the next server (num_concurrent_reqs 1)")
    func nextPassAfterRefusal() async throws {
        let closed = try self.closedServer()
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            // Rotation puts the closed server first on pass 0 and the live one first on pass 1:
            // either way the answer comes without a timeout.
            let resolver = DNSNetworkResolver(servers: [closed, servers[0].address],
                                              options: options(timeout: .seconds(2), attempts: 3, concurrency: 1))
            // Four lookups: the pass order turns, so the closed server comes first every other time.
            for index in 0..<4 {
                let asked = DNSQuestion(name: "mail.example.com", type: .a)
                let (result, ms) = await elapsedMilliseconds { await resolver.resolve(asked) }
                #expect(addresses(result) == ["192.0.2.25"], "lookup \(index): \(result)")
                // Far below the 2 s one wait for the closed server would cost.
                #expect(ms < 1000, "lookup \(index) took \(ms) ms")
                resolver.cache.removeAll()
            }
        }
    }

    @Test("a silent server still gets the whole timeout")
    func silentServerWaitsOutTheTimeout() async throws {
        try await withServers([{ _, _ in [] }]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(300), attempts: 0))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            guard case .failure(let error) = result else {
                Issue.record("expected a timeout, got \(result)")
                return
            }
            #expect(error.kind == .timeout)
            #expect(error.usedWholeTimeBound)
            #expect(ms >= 290, "took \(ms) ms")
        }
    }

    @Test("a silent server and a closed one: the closed one is skipped, the silent one waited for")
    func silentAndClosed() async throws {
        let closed = try self.closedServer()
        try await withServers([{ _, _ in [] }]) { servers in
            let resolver = DNSNetworkResolver(servers: [closed, servers[0].address],
                                              options: options(timeout: .seconds(1), attempts: 0, concurrency: 1))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            // The pass asked both: the refusal at once, then the silent server until the deadline.
            #expect(errorKind(result) == .network, "the more telling failure: \(result)")
            #expect(servers[0].queries.count == 1)
            #expect(ms >= 990, "took \(ms) ms")
        }
    }
}

/// `dns.lookup` asks A, then AAAA when A gave no address. With a silent server the whole lookup
/// stays within `(1 + attempts) × timeout`, not twice that.
@Suite("Address lookups keep the documented bound")
struct AddressLookupBoundTests {
    @Test("a silent server: A times out after (1 + attempts) × timeout and AAAA is not asked",
          arguments: [IPStrategy.ipv4ThenIpv6, .ipv6ThenIpv4])
    func silentServerOneBound(strategy: IPStrategy) async throws {
        try await withServers([{ _, _ in [] }]) { servers in
            var configured = options(timeout: .milliseconds(200), attempts: 1)
            configured.ipStrategy = strategy
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: configured)
            let (result, ms) = await elapsedMilliseconds {
                await resolver.run(AddressLookup(name: "mail.example.com", strategy: strategy))
            }
            guard case .failure(let error) = result else {
                Issue.record("expected a timeout, got \(result)")
                return
            }
            #expect(error.kind == .timeout)
            // The bound is 400 ms; asking the second family too would take 800.
            #expect(ms >= 390 && ms < 700, "took \(ms) ms")
            // Only the first family was asked (its second pass may still be on its way to the
            // server's log when the lookup gives up).
            let first: DNSRecordType = strategy == .ipv4ThenIpv6 ? .a : .aaaa
            let asked = servers[0].queries.map(\.question.type)
            #expect(!asked.isEmpty && asked.allSatisfy { $0 == first }, "asked \(asked)")
        }
    }

    @Test("a SERVFAIL for A still lets AAAA answer (the second family is asked after a quick failure)")
    func servfailThenSecondFamily() async throws {
        let script: DNSServerScript = { query, _ in
            if query.questions[0].type == .a { return [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))] }
            let record = DNSResourceRecord(name: "mail.example.com", ttl: 60, data: .aaaa(IPAddress("2001:db8::25")!))
            return [.send(ScriptedDNSServer.reply(to: query, answers: [record]))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(1), attempts: 1))
            let result = await resolver.run(AddressLookup(name: "mail.example.com", strategy: .ipv4ThenIpv6))
            let found = try result.get()
            #expect(found.addresses == [IPAddress("2001:db8::25")!])
            #expect(servers[0].queries.map(\.question.type) == [.a, .a, .aaaa])
        }
    }

    @Test("all servers refusing: both families are asked, and the lookup still fails in milliseconds")
    func refusedBothFamilies() async throws {
        let closed = DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: try ClosedLoopbackPort.pick())
        let resolver = DNSNetworkResolver(servers: [closed], options: options(timeout: .seconds(2), attempts: 2))
        let ms = await fastestOfFive({
            await resolver.run(AddressLookup(name: "mail.example.com", strategy: .ipv4ThenIpv6))
        }) { result in
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(result)")
                return
            }
            #expect(error.kind == .network)
        }
        // Six refusals (two families, three passes), each known at once; one timeout is 2 s.
        #expect(ms < 500, "took \(ms) ms")
    }
}

#if canImport(Glibc)
import Glibc
#endif

struct SilentSocketError: Error, CustomStringConvertible {
    var description: String { "cannot bind a UDP socket on 127.0.0.1" }
}

/// A UDP socket bound on a loopback port that never reads: queries to it vanish without an
/// ICMP error, like a server behind a firewall that drops them.
final class SilentUDPSocket {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = descriptor >= 0 && withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else {
            if descriptor >= 0 { Glibc.close(descriptor) }
            throw SilentSocketError()
        }
        self.descriptor = descriptor
        self.port = UInt16(bigEndian: address.sin_port)
    }

    func close() { Glibc.close(self.descriptor) }
}

/// RFC 5452 with connected sockets: `connect` must still give every query a fresh random
/// port, and IDs must stay unpredictable.
@Suite("Source port and ID entropy")
struct QueryEntropyTests {
    @Test("1,000 cold queries leave from at least 900 distinct source ports, IDs never repeating in sequence")
    func portsAndIDs() async throws {
        let script: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain))] }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(cacheSize: 0))
            for start in stride(from: 0, to: 1000, by: 50) {
                await withTaskGroup(of: Void.self) { group in
                    for index in start..<(start + 50) {
                        group.addTask { _ = await resolver.resolve(DNSQuestion(name: "n\(index).example.com", type: .a)) }
                    }
                }
            }
            let queries = servers[0].queries
            #expect(queries.count == 1000)
            let ports = queries.map(\.sourcePort)
            #expect(Set(ports).count >= 900, "\(Set(ports).count) distinct ports")
            // Not a counter: consecutive ports are not one apart more often than chance.
            let sequential = zip(ports, ports.dropFirst()).filter { $1 == $0 + 1 }.count
            #expect(sequential < 50, "\(sequential) consecutive ports one apart")
            let ids = queries.map(\.id)
            // Independent random IDs: two neighbours are equal by chance with probability
            // 1/65,536, so about one run in 65 sees one repeat among 999 pairs (this test once
            // failed so, asking for none). A constant or stuck ID would give hundreds.
            let repeats = zip(ids, ids.dropFirst()).filter { $0 == $1 }.count
            #expect(repeats <= 2, "\(repeats) IDs equal to the one before")
            #expect(Set(ids).count >= 980, "\(Set(ids).count) distinct IDs")
        }
    }
}

/// The UDP reactor connects a socket for one exchange and disconnects it (or closes it) whatever
/// ends the exchange.
@Suite("UDP reactor: no socket stays connected after its exchange")
struct ReactorSocketTests {
    @Test("answers, junk, timeouts and cancellations all disconnect their sockets")
    func everySocketDisconnected() async throws {
        let script: DNSServerScript = { query, _ in
            switch query.questions[0].name.first {
            case "a": return [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain))]
            case "j": return [.sendRaw([1, 2, 3])]
            default: return []
            }
        }
        try await withServers([script]) { servers in
            let port = servers[0].address.port
            // Timeouts long enough that no lookup gives up before sending, however loaded the
            // machine: every query must reach the server's log.
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .seconds(1), cacheSize: 0))
            let waiting = DNSNetworkResolver(servers: [servers[0].address],
                                             options: options(timeout: .seconds(30), cacheSize: 0))
            let cancelled = Task { await waiting.resolve(DNSQuestion(name: "s-cancelled.example.com", type: .a)) }
            // Until the server has its query: the lookup is then registered and waiting.
            for _ in 0..<500 where !servers[0].queries.contains(where: { $0.question.name == "s-cancelled.example.com" }) {
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    let name = ["a", "j", "s"][index % 3] + "\(index).example.com"
                    group.addTask { _ = await resolver.resolve(DNSQuestion(name: name, type: .a)) }
                }
            }
            // Cancelled while it waits for the silent server (the others have ended by now).
            let open = try udpSocketsConnected(toPort: port)
            #expect(open == 1, "only the lookup still waiting has a socket: \(open)")
            if open != 1 {
                let early = await cancelled.value
                Issue.record("the waiting lookup ended on its own: \(early)")
            }
            let (result, ms) = await elapsedMilliseconds { () -> DNSQueryResult in
                cancelled.cancel()
                return await cancelled.value
            }
            #expect(errorKind(result) == .timeout)
            // Ended by the cancellation, not by its 30 s timeout.
            #expect(ms < 5000, "the cancelled lookup took \(ms) ms")
            #expect(try udpSocketsConnected(toPort: port) == 0)
            #expect(servers[0].queries.count == 61)
        }
    }
}
