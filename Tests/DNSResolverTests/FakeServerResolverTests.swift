import DNS
import Foundation
import DNSTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import DNSResolver

let question = DNSQuestion(name: "mail.example.com", type: .a)

@Suite("Resolver against the scripted server")
struct FakeServerResolverTests {
    @Test("an answer carries records, TTLs and the server that answered")
    func basicAnswer() async throws {
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25", ttl: 120)])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let result = await resolver.resolve(question)
            let answer = try result.get()
            #expect(answer.outcome == .ok)
            #expect(answer.records == [DNSRecord(name: "mail.example.com", ttl: 120, data: .a(IPAddress("192.0.2.25")!))])
            #expect(answer.server == servers[0].address.description)
            #expect(servers[0].queries.count == 1)
            #expect(servers[0].queries[0].overTCP == false)
        }
    }

    @Test("an IPv6 name server on ::1, over UDP and TCP")
    func ipv6Server() async throws {
        let big = (0..<40).map {
            DNSResourceRecord(name: "mail.example.com", ttl: 60, data: .txt([Array("record \($0)".utf8)]))
        }
        let server = try await ScriptedDNSServer.start(host: "::1") { query, overTCP in
            if overTCP || query.questions[0].type == .a {
                return [.send(ScriptedDNSServer.reply(to: query, answers: overTCP ? big : [a("mail.example.com", "192.0.2.25")]))]
            }
            return [.send(ScriptedDNSServer.reply(to: query, truncated: true))]
        }
        defer { Task { await server.stop() } }
        #expect(server.address.description.hasPrefix("[::1]:"))
        let resolver = DNSNetworkResolver(servers: [server.address], options: options())
        let answer = try await resolver.resolve(question).get()
        #expect(addresses(.success(answer)) == ["192.0.2.25"])
        #expect(answer.server == server.address.description)
        let large = try await resolver.resolve(DNSQuestion(name: "mail.example.com", type: .txt)).get()
        #expect(large.records.count == 40)
        #expect(server.queries.map(\.overTCP) == [false, false, true])
    }

    @Test("a dropped query times out after timeout × (1 + attempts), one query per pass")
    func timeoutBound() async throws {
        try await withServers([{ _, _ in [] }]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(200), attempts: 2))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(errorKind(result) == .timeout)
            #expect(ms >= 580, "took \(ms) ms")
            #expect(ms < 1300, "took \(ms) ms")
            #expect(servers[0].queries.count == 3)
        }
    }

    @Test("the bound holds whatever the number of servers")
    func timeoutBoundManyServers() async throws {
        try await withServers([{ _, _ in [] }, { _, _ in [] }, { _, _ in [] }]) { servers in
            let resolver = DNSNetworkResolver(servers: servers.map(\.address),
                                              options: options(timeout: .milliseconds(200), attempts: 1, concurrency: 1))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(errorKind(result) == .timeout)
            #expect(ms >= 380 && ms < 1100, "took \(ms) ms")
            #expect(servers.map { $0.queries.count }.reduce(0, +) == 2)
        }
    }

    @Test("SERVFAIL and REFUSED are retried on the next pass", arguments: [DNSResponseCode.servFail, .refused])
    func transientRetried(rcode: DNSResponseCode) async throws {
        let calls = NIOLockedValueBox(0)
        let script: DNSServerScript = { query, _ in
            let call = calls.withLockedValue { $0 += 1; return $0 }
            if call < 3 { return [.send(ScriptedDNSServer.reply(to: query, rcode: rcode))] }
            return [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.25")]))]
        }
        try await withServers([script]) { servers in
            let retrying = DNSNetworkResolver(servers: [servers[0].address], options: options(attempts: 2))
            #expect(addresses(await retrying.resolve(question)) == ["192.0.2.25"])
            #expect(servers[0].queries.count == 3)

            calls.withLockedValue { $0 = 0 }
            servers[0].resetLog()
            let giving = DNSNetworkResolver(servers: [servers[0].address], options: options(attempts: 1))
            let result = await giving.resolve(question)
            #expect(errorKind(result) == (rcode == .servFail ? .servfail : .refused))
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("NXDOMAIN and NODATA are answers and are not retried")
    func negativeNotRetried() async throws {
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(attempts: 3, cacheSize: 0))
            #expect(outcome(await resolver.resolve(DNSQuestion(name: "nope.example.com", type: .a))) == .nxdomain)
            #expect(servers[0].queries.count == 1)
            #expect(outcome(await resolver.resolve(DNSQuestion(name: "mail.example.com", type: .mx))) == .nodata)
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("a failing server is replaced by the next one within the same pass")
    func failoverWithinPass() async throws {
        let failing: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))] }
        try await withServers([failing, zoneScript("example.com", [a("mail.example.com", "192.0.2.25")])]) { servers in
            let resolver = DNSNetworkResolver(servers: servers.map(\.address), options: options(attempts: 0, concurrency: 1))
            let answer = try await resolver.resolve(question).get()
            #expect(answer.server == servers[1].address.description)
            #expect(servers[0].queries.count == 1 && servers[1].queries.count == 1)
        }
    }

    @Test("num_concurrent_reqs = 2 asks two servers at once and the first valid answer wins")
    func concurrentServers() async throws {
        let slow: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.1")]), after: .milliseconds(1500))]
        }
        // The fast one still waits a little, so that both queries are surely on the wire.
        let fast: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.2")]), after: .milliseconds(60))]
        }
        try await withServers([slow, fast]) { servers in
            let resolver = DNSNetworkResolver(servers: servers.map(\.address), options: options(timeout: .seconds(3), concurrency: 2))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(addresses(result) == ["192.0.2.2"])
            #expect(ms < 1000, "took \(ms) ms")
            #expect(servers[0].queries.count == 1 && servers[1].queries.count == 1)
        }
    }

    @Test("num_concurrent_reqs = 1 asks one server per pass; the next pass starts at the next server")
    func oneAtATime() async throws {
        let silent: DNSServerScript = { _, _ in [] }
        let good = zoneScript("example.com", [a("mail.example.com", "192.0.2.2")])
        try await withServers([silent, good]) { servers in
            let resolver = DNSNetworkResolver(servers: servers.map(\.address),
                                              options: options(timeout: .milliseconds(200), attempts: 1, concurrency: 1))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(addresses(result) == ["192.0.2.2"])
            #expect(ms >= 190, "took \(ms) ms")
            #expect(servers[0].queries.count == 1 && servers[1].queries.count == 1)
        }
    }

    @Test("spoofed replies (wrong ID, wrong question, wrong source port, junk) are ignored")
    func spoofsIgnored() async throws {
        let script: DNSServerScript = { query, _ in
            var wrongID = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "6.6.6.6")])
            wrongID.header.id &+= 1
            var wrongQuestion = ScriptedDNSServer.reply(to: query, answers: [a("evil.example.com", "6.6.6.7")])
            wrongQuestion.questions = [DNSWireQuestion(name: "evil.example.com", type: .a)]
            var wrongType = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "6.6.6.8")])
            wrongType.questions = [DNSWireQuestion(name: "mail.example.com", type: .aaaa)]
            var notResponse = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "6.6.6.9")])
            notResponse.header.isResponse = false
            let otherPort = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "6.6.6.10")])
            let good = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.25")])
            return [.send(wrongID), .send(wrongQuestion), .send(wrongType), .send(notResponse),
                    .sendFromOtherPort(otherPort), .sendRaw([0xde, 0xad]),
                    .send(good, after: .milliseconds(100))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(2)))
            #expect(addresses(await resolver.resolve(question)) == ["192.0.2.25"])
        }
    }

    @Test("only spoofed replies: the lookup keeps listening until its deadline, then times out")
    func onlySpoofs() async throws {
        let script: DNSServerScript = { query, _ in
            var wrongID = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "6.6.6.6")])
            wrongID.header.id &+= 1
            return [.send(wrongID), .sendFromOtherPort(ScriptedDNSServer.reply(to: query, rcode: .nxDomain)),
                    .sendRaw([UInt8](repeating: 0xff, count: 40))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .milliseconds(300)))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(errorKind(result) == .timeout)
            #expect(ms >= 290, "took \(ms) ms")
        }
    }

    @Test("a truncated UDP reply is retried over TCP")
    func truncationToTCP() async throws {
        let big = (0..<40).map { a("mail.example.com", "192.0.2.\($0 + 1)") }
        let script: DNSServerScript = { query, overTCP in
            if overTCP { return [.send(ScriptedDNSServer.reply(to: query, answers: big))] }
            return [.send(ScriptedDNSServer.reply(to: query, truncated: true))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let result = await resolver.resolve(question)
            #expect(addresses(result).count == 40)
            #expect(servers[0].queries.map(\.overTCP) == [false, true])
        }
    }

    @Test("a TCP failure after truncation is a transient error")
    func truncationTCPFails() async throws {
        let script: DNSServerScript = { query, overTCP in
            overTCP ? [] : [.send(ScriptedDNSServer.reply(to: query, truncated: true))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .milliseconds(200)))
            #expect(errorKind(await resolver.resolve(question)) == .timeout)
        }
    }

    @Test("a truncated reply from a server without TCP is a network error")
    func truncationNoTCP() async throws {
        let script: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, truncated: true))] }
        try await withServers([script]) { servers in
            await servers[0].closeTCP()
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(attempts: 1))
            let result = await resolver.resolve(question)
            #expect(errorKind(result) == .network, "\(result)")
            #expect(servers[0].queries.map(\.overTCP) == [false, false])
        }
    }

    @Test("rotate turns multi-record answers between lookups; without it the order is kept")
    func rotation() async throws {
        let records = [a("mail.example.com", "192.0.2.1"), a("mail.example.com", "192.0.2.2"), a("mail.example.com", "192.0.2.3")]
        try await withServers([zoneScript("example.com", records)]) { servers in
            let rotating = DNSNetworkResolver(servers: [servers[0].address], options: options(rotate: true))
            #expect(rotating.rotatesRecords)
            var firsts: Set<String> = []
            for _ in 0..<3 { firsts.insert(addresses(await rotating.resolve(question))[0]) }
            #expect(firsts.count == 3)
            if case .success(let cached)? = rotating.immediateResult(for: question) {
                #expect(Set(cached.records) == Set(records.map(\.record)))
            } else {
                Issue.record("no cached answer")
            }

            let fixed = DNSNetworkResolver(servers: [servers[0].address], options: options(rotate: false))
            #expect(!fixed.rotatesRecords)
            for _ in 0..<3 { #expect(addresses(await fixed.resolve(question)) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) }
        }
    }

    /// Answers mail.example.com with 192.0.2.25, `delay` after each query: long enough for
    /// other askers to join the lookup in flight.
    static func slowAnswer(after delay: TimeAmount) -> DNSServerScript {
        { query, _ in [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.25")]), after: delay)] }
    }

    @Test("identical questions in flight are merged into one query")
    func inFlightMerge() async throws {
        let script = Self.slowAnswer(after: .milliseconds(150))
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(2), cacheSize: 0))
            let results = await withTaskGroup(of: DNSQueryResult.self) { group in
                for _ in 0..<20 { group.addTask { await resolver.resolve(question) } }
                var all: [DNSQueryResult] = []
                for await result in group { all.append(result) }
                return all
            }
            #expect(results.count == 20)
            #expect(results.allSatisfy { addresses($0) == ["192.0.2.25"] })
            #expect(servers[0].queries.count == 1)
        }
    }

    @Test("a cancelled lookup does not hand its failure to the lookups merged with it")
    func cancelledLeader() async throws {
        let script = Self.slowAnswer(after: .milliseconds(300))
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(2), cacheSize: 0))
            let leader = Task { await resolver.resolve(question) }
            try await Task.sleep(for: .milliseconds(50))
            let follower = Task { await resolver.resolve(question) }
            try await Task.sleep(for: .milliseconds(50))
            leader.cancel()
            #expect(errorKind(await leader.value) != nil)
            #expect(addresses(await follower.value) == ["192.0.2.25"])
            #expect(servers[0].queries.count == 2)
        }
    }

    /// Collects what `startResolving` delivers, for the tests of the callback path.
    final class Deliveries: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [DNSQueryResult] = []
        func add(_ result: DNSQueryResult) { self.lock.withLock { self.results.append(result) } }
        var all: [DNSQueryResult] { self.lock.withLock { self.results } }
        func wait(for count: Int) async throws {
            for _ in 0..<400 where self.all.count < count { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    @Test("startResolving: one query for callbacks and awaits asking the same question; a cached answer is delivered at once")
    func callbackMerge() async throws {
        let script = Self.slowAnswer(after: .milliseconds(150))
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(2)))
            let deliveries = Deliveries()
            for _ in 0..<10 { _ = resolver.startResolving(question, preferring: nil) { deliveries.add($0) } }
            let awaited = await resolver.resolve(question)
            try await deliveries.wait(for: 10)
            #expect(deliveries.all.count == 10)
            #expect(deliveries.all.allSatisfy { addresses($0) == ["192.0.2.25"] })
            #expect(addresses(awaited) == ["192.0.2.25"])
            #expect(servers[0].queries.count == 1)

            // Now cached: delivered before startResolving returns, without a query.
            let cached = Deliveries()
            _ = resolver.startResolving(question, preferring: nil) { cached.add($0) }
            #expect(cached.all.count == 1)
            #expect(addresses(cached.all[0]) == ["192.0.2.25"])
            #expect(servers[0].queries.count == 1)
        }
    }

    @Test("startResolving: cancelling the leading lookup leaves its followers, callbacks and awaits, to ask again")
    func callbackCancelledLeader() async throws {
        let script = Self.slowAnswer(after: .milliseconds(300))
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(timeout: .seconds(2), cacheSize: 0))
            let led = Deliveries()
            let leader = resolver.startResolving(question, preferring: nil) { led.add($0) }
            try await Task.sleep(for: .milliseconds(50))
            let followed = Deliveries()
            _ = resolver.startResolving(question, preferring: nil) { followed.add($0) }
            let awaiting = Task { await resolver.resolve(question) }
            try await Task.sleep(for: .milliseconds(50))
            leader.cancel()
            try await led.wait(for: 1)
            try await followed.wait(for: 1)
            #expect(led.all.count == 1 && errorKind(led.all[0]) != nil)
            #expect(followed.all.count == 1)
            #expect(followed.all.allSatisfy { addresses($0) == ["192.0.2.25"] })
            #expect(addresses(await awaiting.value) == ["192.0.2.25"])
            // The cancelled query, then one more for the followers (merged again).
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("each query uses a fresh random ID and a fresh source port")
    func randomIDsAndPorts() async throws {
        let script: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain))] }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(cacheSize: 0))
            for index in 0..<20 { _ = await resolver.resolve(DNSQuestion(name: "n\(index).example.com", type: .a)) }
            let queries = servers[0].queries
            #expect(queries.count == 20)
            // 16-bit values: two equal among 20 has a probability under 0.3%.
            #expect(Set(queries.map(\.id)).count >= 19)
            #expect(Set(queries.map(\.sourcePort)).count >= 19)
        }
    }
}

@Suite("Resolver CNAME chains")
struct CNAMEChainTests {
    @Test("a chain in one reply is followed by owner name and kept when preserve_intermediates")
    func chainInOneReply() async throws {
        let script: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [
                cname("mail.example.com", "alias.example.com", ttl: 100),
                a("unrelated.example.com", "6.6.6.6"),
                cname("alias.example.com", "host.example.net", ttl: 200),
                a("host.example.net", "192.0.2.80", ttl: 50),
            ], additional: [a("mail.example.com", "6.6.6.7")]))]
        }
        try await withServers([script]) { servers in
            let keeping = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let answer = try await keeping.resolve(question).get()
            #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.80")!)])
            #expect(answer.chain.map(\.name) == ["mail.example.com", "alias.example.com"])
            #expect(servers[0].queries.count == 1)

            let dropping = DNSNetworkResolver(servers: [servers[0].address], options: options(preserveIntermediates: false))
            let plain = try await dropping.resolve(question).get()
            #expect(plain.chain.isEmpty)
            #expect(plain.records.count == 1)
        }
    }

    @Test("a chain that leaves the server's zone is continued with a new query for its target")
    func chainAcrossZones() async throws {
        let script: DNSServerScript = { query, _ in
            switch query.questions[0].name {
            case "mail.example.com":
                return [.send(ScriptedDNSServer.reply(to: query, answers: [cname("mail.example.com", "host.example.net")]))]
            case "host.example.net":
                return [.send(ScriptedDNSServer.reply(to: query, answers: [a("host.example.net", "192.0.2.80")]))]
            default:
                return [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain))]
            }
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let answer = try await resolver.resolve(question).get()
            #expect(addresses(.success(answer)) == ["192.0.2.80"])
            #expect(answer.chain.count == 1)
            #expect(servers[0].queries.map(\.question.name) == ["mail.example.com", "host.example.net"])
        }
    }

    @Test("a chain asked link by link still keeps the (1 + attempts) × timeout bound")
    func chainBound() async throws {
        // Every link is answered only after 150 ms, and only with the next CNAME.
        let script: DNSServerScript = { query, _ in
            let name = query.questions[0].name
            let next = name == "mail.example.com" ? "c1.example.com" : "c\((Int(name.dropFirst().prefix { $0 != "." }) ?? 0) + 1).example.com"
            return [.send(ScriptedDNSServer.reply(to: query, answers: [cname(name, next)]), after: .milliseconds(150))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address],
                                              options: options(timeout: .milliseconds(200), attempts: 1))
            let (result, ms) = await elapsedMilliseconds { await resolver.resolve(question) }
            #expect(errorKind(result) == .timeout)
            #expect(ms < 800, "took \(ms) ms")
            #expect(servers[0].queries.count >= 2)
        }
    }

    @Test("NXDOMAIN at the end of a chain is an nxdomain answer with the chain")
    func chainToNothing() async throws {
        let script: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain, answers: [cname("mail.example.com", "gone.example.com")],
                                           authority: [soa("example.com")]))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let answer = try await resolver.resolve(question).get()
            #expect(answer.outcome == .nxdomain)
            #expect(answer.chain.count == 1)
            #expect(servers[0].queries.count == 1)
        }
    }

    @Test("chains longer than 8 and CNAME loops are transient errors, not hangs")
    func tooLong() async throws {
        let long: DNSServerScript = { query, _ in
            let records = (0..<10).map { cname("c\($0).example.com", "c\($0 + 1).example.com") }
            var renamed = records
            renamed[0] = cname("mail.example.com", "c1.example.com")
            return [.send(ScriptedDNSServer.reply(to: query, answers: renamed))]
        }
        let loop: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [
                cname("mail.example.com", "x.example.com"), cname("x.example.com", "mail.example.com"),
            ]))]
        }
        try await withServers([long, loop]) { servers in
            for server in servers {
                let resolver = DNSNetworkResolver(servers: [server.address], options: options())
                #expect(errorKind(await resolver.resolve(question)) == .servfail)
            }
        }
    }

    @Test("asking for CNAME itself returns the CNAME record without following it")
    func askingForCNAME() async throws {
        try await withServers([zoneScript("example.com", [cname("mail.example.com", "host.example.com")])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let answer = try await resolver.resolve(DNSQuestion(name: "mail.example.com", type: .cname)).get()
            #expect(answer.records.map(\.data) == [.cname("host.example.com")])
            #expect(answer.chain.isEmpty)
        }
    }
}

@Suite("Resolver cache")
struct CacheTests {
    @Test("a second lookup is answered from the cache, also synchronously, with TTLs counted down")
    func hitsAndCountdown() async throws {
        let clock = ManualClock()
        try await withServers([zoneScript("example.com", [a("mail.example.com", "192.0.2.25", ttl: 100)])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(), now: clock.now)
            #expect(resolver.immediateResult(for: question) == nil)
            _ = await resolver.resolve(question)
            clock.advance(seconds: 30)
            let cached = try await resolver.resolve(question).get()
            #expect(cached.records[0].ttl == 70)
            #expect(try resolver.immediateResult(for: question)?.get().records[0].ttl == 70)
            #expect(servers[0].queries.count == 1)

            clock.advance(seconds: 70)
            #expect(resolver.immediateResult(for: question) == nil)
            let fresh = try await resolver.resolve(question).get()
            #expect(fresh.records[0].ttl == 100)
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("the least recently used entry is evicted beyond cache_size")
    func lruEviction() async throws {
        let records = ["a", "b", "c"].map { a("\($0).example.com", "192.0.2.1") }
        try await withServers([zoneScript("example.com", records)]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(cacheSize: 2))
            let qa = DNSQuestion(name: "a.example.com", type: .a)
            let qb = DNSQuestion(name: "b.example.com", type: .a)
            let qc = DNSQuestion(name: "c.example.com", type: .a)
            _ = await resolver.resolve(qa)
            _ = await resolver.resolve(qb)
            _ = await resolver.resolve(qa)  // a is now more recent than b
            _ = await resolver.resolve(qc)  // evicts b
            #expect(resolver.cache.count == 2)
            #expect(resolver.immediateResult(for: qa) != nil)
            #expect(resolver.immediateResult(for: qb) == nil)
            #expect(resolver.immediateResult(for: qc) != nil)
            #expect(servers[0].queries.count == 3)
        }
    }

    @Test("large answers are held within cache_size × 4 KiB: they evict the least recently used; one larger than that is answered, not kept")
    func byteBound() async throws {
        func text(_ name: String, strings: Int) -> DNSResourceRecord {
            DNSResourceRecord(name: name, ttl: 300, data: .txt(Array(repeating: Array(repeating: UInt8(ascii: "v"), count: 255), count: strings)))
        }
        let records = ["a", "b"].map { a("\($0).example.com", "192.0.2.1") }
            + ["big1", "big2", "big3"].map { text("\($0).example.com", strings: 25) }
            + [text("huge.example.com", strings: 70)]
        try await withServers([zoneScript("example.com", records)]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(cacheSize: 4))
            #expect(resolver.cache.maximumBytes == 4 * 4_096)
            let question = { (name: String, type: DNSRecordType) in DNSQuestion(name: "\(name).example.com", type: type) }
            for name in ["a", "b"] { _ = await resolver.resolve(question(name, .a)) }
            for name in ["big1", "big2"] {
                let answer = try await resolver.resolve(question(name, .txt)).get()
                #expect(answer.records.first?.data == .txt(Array(repeating: Array(repeating: UInt8(ascii: "v"), count: 255), count: 25)))
            }
            #expect(resolver.cache.count == 4, "four entries of about 16 KB fit")
            _ = await resolver.resolve(question("big3", .txt))
            // The count evicts a; the bytes then b and big1.
            #expect(resolver.cache.count == 2)
            #expect(resolver.cache.byteCount <= resolver.cache.maximumBytes)
            #expect(resolver.immediateResult(for: question("big1", .txt)) == nil)
            #expect(resolver.immediateResult(for: question("big2", .txt)) != nil)
            #expect(resolver.immediateResult(for: question("big3", .txt)) != nil)
            let huge = try await resolver.resolve(question("huge", .txt)).get()
            #expect(huge.records.first?.data == .txt(Array(repeating: Array(repeating: UInt8(ascii: "v"), count: 255), count: 70)))
            #expect(resolver.immediateResult(for: question("huge", .txt)) == nil, "larger than the whole bound: not kept")
            #expect(resolver.cache.count == 2, "and nothing evicted for it")
            // An entry that expires gives its bytes back.
            resolver.cache.removeAll()
            #expect(resolver.cache.byteCount == 0)
        }
    }

    @Test("an expired entry found by a lookup gives back its bytes")
    func expiredBytes() {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 8, now: clock.now)
        let question = DNSQuestion(name: "t.example", type: .txt)
        let answer = DNSAnswer(name: question.name, type: .txt, outcome: .ok,
                               records: [DNSRecord(name: question.name, ttl: 5, data: .txt([Array(repeating: 0x41, count: 1_000)]))])
        cache.store(answer, for: question, ttl: 5)
        #expect(cache.byteCount > 1_000)
        clock.advance(seconds: 6)
        #expect(cache.lookup(question) == nil)
        #expect(cache.byteCount == 0)
        #expect(cache.count == 0)
    }

    @Test("negative answers are cached for min(SOA TTL, SOA MINIMUM), an hour at most; without an SOA not at all",
          arguments: [(UInt32(3_600), UInt32(60), Int64(60)), (UInt32(604_800), UInt32(604_800), Int64(3_600))])
    func negativeCaching(soaTTL: UInt32, minimum: UInt32, lifetime: Int64) async throws {
        let clock = ManualClock()
        try await withServers([zoneScript("example.com", [], soaTTL: soaTTL, soaMinimum: minimum)]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(), now: clock.now)
            let missing = DNSQuestion(name: "nope.example.com", type: .a)
            #expect(outcome(await resolver.resolve(missing)) == .nxdomain)
            clock.advance(seconds: lifetime - 1)
            #expect(outcome(await resolver.resolve(missing)) == .nxdomain)
            #expect(servers[0].queries.count == 1)
            clock.advance(seconds: 2)
            #expect(outcome(await resolver.resolve(missing)) == .nxdomain)
            #expect(servers[0].queries.count == 2)
        }
        let noSOA: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .nxDomain))] }
        try await withServers([noSOA]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            _ = await resolver.resolve(question)
            _ = await resolver.resolve(question)
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("a TTL over a day is read as a day, in the answer and the chain handed out and in the cache")
    func longTTLsCapped() async throws {
        let clock = ManualClock()
        let forever: UInt32 = 0x7FFF_FFFF
        let script: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [
                cname("mail.example.com", "host.example.com", ttl: forever), a("host.example.com", "192.0.2.80", ttl: forever),
            ]))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(), now: clock.now)
            let answer = try await resolver.resolve(question).get()
            #expect(answer.records.map(\.ttl) == [86_400])
            #expect(answer.chain.map(\.ttl) == [86_400])
            clock.advance(seconds: 86_399)
            #expect(try resolver.immediateResult(for: question)?.get().records.map(\.ttl) == [1])
            clock.advance(seconds: 2)
            #expect(resolver.immediateResult(for: question) == nil)
            _ = await resolver.resolve(question)
            #expect(servers[0].queries.count == 2)
        }
    }

    @Test("a CNAME chain is cached whole under the name asked, for the smallest TTL in it")
    func chainCached() async throws {
        let clock = ManualClock()
        let script: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [
                cname("mail.example.com", "host.example.com", ttl: 20), a("host.example.com", "192.0.2.80", ttl: 300),
            ]))]
        }
        try await withServers([script]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options(), now: clock.now)
            _ = await resolver.resolve(question)
            let cached = try #require(resolver.immediateResult(for: question)).get()
            #expect(cached.chain.count == 1 && cached.records.count == 1)
            clock.advance(seconds: 21)
            #expect(resolver.immediateResult(for: question) == nil)
        }
    }

    @Test("errors are not cached, and cache_size = 0 caches nothing")
    func noCaching() async throws {
        let failing: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))] }
        try await withServers([failing, zoneScript("example.com", [a("mail.example.com", "192.0.2.1")])]) { servers in
            let broken = DNSNetworkResolver(servers: [servers[0].address], options: options())
            _ = await broken.resolve(question)
            #expect(broken.immediateResult(for: question) == nil)
            let uncached = DNSNetworkResolver(servers: [servers[1].address], options: options(cacheSize: 0))
            _ = await uncached.resolve(question)
            _ = await uncached.resolve(question)
            #expect(servers[1].queries.count == 2)
        }
    }
}

@Suite("Resolver DNSSEC handling")
struct ValidationTests {
    @Test("validate sets DO and CD on every query; the upstream's AD bit is never trusted")
    func adIgnored() async throws {
        let script: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.1")], authenticData: true))]
        }
        try await withServers([script]) { servers in
            // An anchor for another zone only: nothing covers example.com, so it is insecure,
            // whatever the AD bit says.
            var validatingOptions = options(validate: true)
            validatingOptions.trustAnchors = DNSTrustAnchors(records: [DNSRecord(
                name: "other.test", ttl: 3600, data: .unknown(type: .ds, data: [0, 1, 13, 2] + Array(repeating: 0, count: 32)))])!
            let validating = DNSNetworkResolver(servers: [servers[0].address], options: validatingOptions)
            let answer = try await validating.resolve(question).get()
            #expect(answer.security.status == .insecure)
            #expect(answer.security.reason == "no trust anchor covers mail.example.com")
            #expect(servers[0].queries.last?.dnssecOK == true)

            let plain = DNSNetworkResolver(servers: [servers[0].address], options: options(validate: false))
            let unsecured = try await plain.resolve(question).get()
            #expect(unsecured.security == .insecure)
            #expect(servers[0].queries.last?.dnssecOK == false)
        }
    }

    @Test("SERVFAIL with a DNSSEC extended error is bogus, a transient failure; plain SERVFAIL stays servfail")
    func bogus() async throws {
        let bogus: DNSServerScript = { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail,
                                           edns: EDNS(options: [EDNS.Option(code: 15, data: [0, 6])])))]
        }
        let plain: DNSServerScript = { query, _ in [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))] }
        try await withServers([bogus, plain]) { servers in
            let first = DNSNetworkResolver(servers: [servers[0].address], options: options(validate: true))
            #expect(errorKind(await first.resolve(question)) == .bogus)
            #expect(first.immediateResult(for: question) == nil)
            let second = DNSNetworkResolver(servers: [servers[1].address], options: options(validate: true))
            #expect(errorKind(await second.resolve(question)) == .servfail)
        }
    }
}

@Suite("Resolver input and warnings")
struct InputTests {
    @Test("a name that cannot be encoded fails before any query")
    func invalidName() async throws {
        try await withServers([zoneScript("example.com", [])]) { servers in
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: options())
            let long = String(repeating: "a", count: 64) + ".example.com"
            let result = await resolver.resolve(DNSQuestion(name: long, type: .a))
            #expect(errorKind(result) == .formerr)
            #expect(servers[0].queries.isEmpty)
        }
    }
}

@Suite("ip_strategy through the network resolver")
struct IPStrategyTests {
    /// A answers SERVFAIL, AAAA answers: the "then" strategies still find the IPv6 address.
    static let v4Fails: DNSServerScript = { query, _ in
        let question = query.questions[0]
        if question.type == .a { return [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail))] }
        return [.send(ScriptedDNSServer.reply(to: query, answers: [
            DNSResourceRecord(name: question.name, ttl: 60, data: .aaaa(IPAddress("2001:db8::1")!)),
        ]))]
    }

    @Test("every strategy, with the IPv4 family failing", arguments: IPStrategy.allCases)
    func familyFailure(strategy: IPStrategy) async throws {
        try await withServers([Self.v4Fails]) { servers in
            var opts = options()
            opts.ipStrategy = strategy
            let resolver = DNSNetworkResolver(servers: [servers[0].address], options: opts)
            #expect(resolver.ipStrategy == strategy)
            let result = await resolver.run(AddressLookup(name: "mail.example.com", strategy: resolver.ipStrategy))
            switch strategy {
            case .ipv4Only:
                guard case .failure(let error) = result else { Issue.record("expected a failure, got \(result)"); return }
                #expect(error.kind == .servfail)
            default:
                let found = try result.get()
                #expect(found.addresses.map(\.description) == ["2001:db8::1"])
            }
            let asked = Set(servers[0].queries.map(\.question.type))
            switch strategy {
            case .ipv4Only: #expect(asked == [.a])
            case .ipv6Only, .ipv6ThenIpv4: #expect(asked == [.aaaa])
            default: #expect(asked == [.a, .aaaa])
            }
        }
    }
}

@Suite("Real-server harness")
struct HarnessTests {
    @Test("a missing server binary fails with the Debian package to install")
    func missingBinary() {
        do {
            try RealServers.requireExecutable("/nonexistent/knotd", package: "knot")
            Issue.record("a missing binary was accepted")
        } catch {
            #expect("\(error)".contains("apt-get install knot"))
        }
    }
}

@Suite("Cache model check")
struct CacheModelTests {
    /// Random stores, lookups and clock moves against a plain array model of an LRU with TTLs.
    @Test("DNSCache behaves like a reference LRU", arguments: [UInt64(3), 77, 2026])
    func againstModel(seed: UInt64) {
        var random = SplitMix64(state: seed)
        let clock = ManualClock()
        let capacity = 5
        let cache = DNSCache(capacity: capacity, now: clock.now)
        // Model: most recently used last; (question, expiry second, ttl, stored second).
        var model: [(question: DNSQuestion, expires: Int64, stored: Int64, ttl: UInt32)] = []
        var now: Int64 = 0
        let questions = (0..<9).map { DNSQuestion(name: "n\($0).example", type: $0 % 2 == 0 ? .a : .mx) }

        for step in 0..<3000 {
            let question = questions[Int.random(in: 0..<questions.count, using: &random)]
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let ttl = UInt32.random(in: 0...20, using: &random)
                let answer = DNSAnswer(name: question.name, type: question.type, outcome: .ok,
                                       records: [DNSRecord(name: question.name, ttl: ttl, data: .a(IPAddress("192.0.2.1")!))])
                cache.store(answer, for: question, ttl: ttl)
                guard ttl > 0 else { continue }
                model.removeAll { $0.question == question }
                if model.count >= capacity { model.removeFirst() }
                model.append((question, now + Int64(ttl), now, ttl))
            case 4..<9:
                let got = cache.lookup(question)
                if let index = model.firstIndex(where: { $0.question == question }) {
                    let entry = model[index]
                    model.remove(at: index)
                    if now < entry.expires {
                        model.append(entry)
                        let expected = entry.ttl - UInt32(now - entry.stored)
                        #expect(got?.records.first?.ttl == expected, "seed \(seed) step \(step)")
                    } else {
                        #expect(got == nil, "seed \(seed) step \(step): expired entry returned")
                    }
                } else {
                    #expect(got == nil, "seed \(seed) step \(step): evicted entry returned")
                }
            default:
                let seconds = Int64.random(in: 1...4, using: &random)
                clock.advance(seconds: seconds)
                now += seconds
            }
            #expect(cache.count <= capacity)
        }
    }
}
