import DNS
import DNSTestSupport
import NIOCore
import Testing
import VrulesTestSupport
@testable import DNSResolver

/// A name server whose port is closed answers every query with an ICMP port unreachable: the
/// resolver knows at once, moves on, and reports a transient error in milliseconds. A silent
/// server still gets the whole timeout. And a lookup of both address families keeps the
/// documented worst case.
@Suite("Refused and silent name servers")
struct UnreachableServerTests {
    /// A loopback server address on which nothing listens.
    func closedServer() throws -> DNSServerAddress {
        DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: try LoopbackPorts.free())
    }

    @Test("a server on a closed port fails as a network error in under 100 ms, with timeout 2s and retries")
    func closedPortFailsAtOnce() async throws {
        let closed = try self.closedServer()
        let resolver = DNSNetworkResolver(servers: [closed], options: options(timeout: .seconds(2), attempts: 2))
        let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.kind == .network, "\(error)")
        #expect(error.detail?.contains("\(closed)") == true, "\(error)")
        #expect(error.detail?.contains("port unreachable") == true, "\(error)")
        #expect(!error.usedWholeTimeBound)
        #expect(ms < 100, "took \(ms) ms")
    }

    @Test("every server refusing, each pass, several servers at once: still milliseconds", arguments: [1, 2])
    func allServersRefuse(concurrency: Int) async throws {
        let servers = try (0..<3).map { _ in try self.closedServer() }
        let resolver = DNSNetworkResolver(servers: servers,
                                          options: options(timeout: .seconds(2), attempts: 2, concurrency: concurrency))
        let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
        #expect(errorKind(result) == .network, "\(result)")
        #expect(ms < 100, "took \(ms) ms")
    }

    @Test("two servers, the first closed: the second answers without waiting", arguments: [1, 2])
    func firstClosedSecondAnswers(concurrency: Int) async throws {
        let closed = try self.closedServer()
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            let resolver = DNSNetworkResolver(servers: [closed, servers[0].address],
                                              options: options(timeout: .seconds(2), attempts: 1, concurrency: concurrency))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(addresses(result) == ["192.0.2.25"], "\(result)")
            let answer = try result.get()
            #expect(answer.server == servers[0].address.description)
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
            for index in 0..<4 {
                let asked = DNSQuestion(name: "mail.example.com", type: .a)
                let (result, ms) = await elapsedMilliseconds { await resolver.resolve(asked) }
                #expect(addresses(result) == ["192.0.2.25"], "lookup \(index): \(result)")
                #expect(ms < 100, "lookup \(index) took \(ms) ms")
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
                                              options: options(timeout: .milliseconds(300), attempts: 0, concurrency: 1))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            // The pass asked both: the refusal at once, then the silent server until the deadline.
            #expect(errorKind(result) == .network, "the more telling failure: \(result)")
            #expect(servers[0].queries.count == 1)
            #expect(ms >= 290, "took \(ms) ms")
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
            let first: DNSRecordType = strategy == .ipv4ThenIpv6 ? .a : .aaaa
            #expect(servers[0].queries.map(\.question.type) == [first, first])
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
        let closed = DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: try LoopbackPorts.free())
        let resolver = DNSNetworkResolver(servers: [closed], options: options(timeout: .seconds(2), attempts: 2))
        let (result, ms) = await elapsedMilliseconds {
            await resolver.run(AddressLookup(name: "mail.example.com", strategy: .ipv4ThenIpv6))
        }
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.kind == .network)
        #expect(ms < 100, "took \(ms) ms")
    }
}
