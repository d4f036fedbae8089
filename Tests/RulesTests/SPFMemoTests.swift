import DNS
import DNSResolver
import DNSTestSupport
import Rules
import Testing

/// SPF results reused by the network resolver (`SPFResultMemo`), through `spf.check_host`:
/// what is reused, for how long, and what never is. The scripted server's log shows which
/// checks asked DNS.
@Suite("spf.check_host reuses results on a resolver with a cache", .serialized)
struct SPFMemoTests {
    /// example.com passes 192.0.2.25 through `mx` after an include; every record lives 300 s.
    static func records(mxTTL: UInt32 = 300, mxAddress: String = "192.0.2.25") -> [DNSRecord] {
        [
            DNSRecord(name: "example.com", ttl: 300, data: .txt([Array("v=spf1 include:_spf.example.net mx -all".utf8)])),
            DNSRecord(name: "_spf.example.net", ttl: 300, data: .txt([Array("v=spf1 ip4:203.0.113.0/24 -all".utf8)])),
            DNSRecord(name: "example.com", ttl: 300, data: .mx(preference: 10, exchange: "mx.example.com")),
            DNSRecord(name: "mx.example.com", ttl: mxTTL, data: .a(IPAddress(mxAddress)!)),
            DNSRecord(name: "macro.example", ttl: 300, data: .txt([Array("v=spf1 exists:%{l}.allow.example -all".utf8)])),
            DNSRecord(name: "alice.allow.example", ttl: 300, data: .a(IPAddress("127.0.0.2")!)),
            DNSRecord(name: "explained.example", ttl: 300, data: .txt([Array("v=spf1 -all exp=why.explained.example".utf8)])),
            DNSRecord(name: "why.explained.example", ttl: 300, data: .txt([Array("%{s} may not send".utf8)])),
        ]
    }

    /// A network resolver with a cache of `cacheSize` answers, asking `server`.
    static func resolver(_ server: ScriptedDNSServer, cacheSize: Int) -> DNSNetworkResolver {
        DNSNetworkResolver(servers: [server.address],
                           options: DNSResolverOptions(timeout: .seconds(1), attempts: 1, cacheSize: cacheSize))
    }

    /// The result of `spf.check_host(ip, domain, sender)` in a connect rule: "result" or
    /// "result: explanation".
    static func check(_ resolver: DNSNetworkResolver, ip: String, domain: String = "example.com",
                      sender: String) async throws -> String {
        try await Self.tracedCheck(resolver, ip: ip, domain: domain, sender: sender).result
    }

    /// The same, with what the stage's trace says of the call.
    static func tracedCheck(_ resolver: DNSNetworkResolver, ip: String, domain: String = "example.com",
                            sender: String) async throws -> (result: String, traced: [String]) {
        let body = """
            local r = spf.check_host("\(ip)", "\(domain)", "\(sender)")
            ctx.add_header("X-Result", r.explanation and (r.result .. ": " .. r.explanation) or r.result)
            return accept()
            """
        let engine = try RuleEngine(source: script(.connect, body), path: "spf.lua", resolvers: SingleResolver(resolver))
        let transaction = await engine.beginTransaction(defaultSession)
        let result = await engine.evaluate(.connect, in: transaction)
        await engine.endTransaction(transaction)
        let traced = result.trace.compactMap { event -> String? in
            if case .dnsCall(_, _, let summary) = event { return summary }
            return nil
        }
        return (try #require(result.headers.first?.value, "\(result.failure ?? "no header")"), traced)
    }

    @Test("the same client IP and domain: the second check, another sender's, asks no server, even when the cache kept only one of the answers")
    func reusedWithoutAsking() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records()))
        // One answer cached at a time: without the kept result, the second check would ask again.
        let resolver = Self.resolver(server, cacheSize: 1)
        let first = try await Self.tracedCheck(resolver, ip: "192.0.2.25", sender: "alice@example.com")
        #expect(first.result == "pass")
        #expect(first.traced == ["pass (mx)"])
        #expect(server.queries.count == 4)
        // The trace says where the result came from, since it shows no query for it.
        let second = try await Self.tracedCheck(resolver, ip: "192.0.2.25", sender: "bob@example.com")
        #expect(second.result == "pass")
        #expect(second.traced == ["pass (mx), reused from an earlier check"])
        #expect(server.queries.count == 4)
        // Another client is another check.
        #expect(try await Self.check(resolver, ip: "198.51.100.9", sender: "bob@example.com") == "fail")
        #expect(server.queries.count > 4)
        await server.stop()
    }

    @Test("a record with a macro is checked anew for each sender")
    func macrosAreNotReused() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records()))
        let resolver = Self.resolver(server, cacheSize: 100)
        #expect(try await Self.check(resolver, ip: "192.0.2.25", domain: "macro.example", sender: "alice@macro.example") == "pass")
        #expect(try await Self.check(resolver, ip: "192.0.2.25", domain: "macro.example", sender: "bob@macro.example") == "fail")
        #expect(try await Self.check(resolver, ip: "192.0.2.25", domain: "macro.example", sender: "alice@macro.example") == "pass")
        await server.stop()
    }

    @Test("a fail with an explanation is made anew for each sender")
    func explanationsAreNotReused() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records()))
        let resolver = Self.resolver(server, cacheSize: 100)
        #expect(try await Self.check(resolver, ip: "192.0.2.25", domain: "explained.example", sender: "alice@explained.example")
                == "fail: alice@explained.example may not send")
        #expect(try await Self.check(resolver, ip: "192.0.2.25", domain: "explained.example", sender: "bob@explained.example")
                == "fail: bob@explained.example may not send")
        await server.stop()
    }

    @Test("a result outlives none of the answers it came from")
    func endsWithTheShortestTTL() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records(mxTTL: 2)))
        let resolver = Self.resolver(server, cacheSize: 100)
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "alice@example.com") == "pass")
        // The MX host moves; the answer naming its old address is valid for 2 s.
        server.setScript(ScriptedDNSServer.authoritative(records: Self.records(mxTTL: 2, mxAddress: "192.0.2.99")))
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "bob@example.com") == "pass")
        try await Task.sleep(for: .milliseconds(2_300))
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "carol@example.com") == "fail")
        await server.stop()
    }

    @Test("a temperror is not kept: the next check asks again")
    func temperrorsAreNotReused() async throws {
        let records = Self.records()
        let server = try await ScriptedDNSServer.start(script: { query, _ in
            [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail), after: .zero)]
        })
        let resolver = Self.resolver(server, cacheSize: 100)
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "alice@example.com") == "temperror")
        server.setScript(ScriptedDNSServer.authoritative(records: records))
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "alice@example.com") == "pass")
        await server.stop()
    }

    @Test("with [server.dns.zones], results are kept only when every zone's resolver has a cache too")
    func zoneRoutes() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records()))
        let cached = Self.resolver(server, cacheSize: 100)
        let routedWithCache = ZoneRoutedResolver(fallback: cached, routes: ["bl.example": Self.resolver(server, cacheSize: 10)])
        #expect(routedWithCache.spfResultMemo === cached.spfResultMemo)
        let routedWithout = ZoneRoutedResolver(fallback: cached, routes: ["bl.example": Self.resolver(server, cacheSize: 0)])
        #expect(routedWithout.spfResultMemo == nil)
        await server.stop()
    }

    @Test("without a cache (cache_size = 0) nothing is kept: each check asks, and sees a change at once")
    func noCacheNoReuse() async throws {
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: Self.records()))
        let resolver = Self.resolver(server, cacheSize: 0)
        #expect(resolver.spfResultMemo == nil)
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "alice@example.com") == "pass")
        #expect(server.queries.count == 4)
        server.setScript(ScriptedDNSServer.authoritative(records: Self.records(mxAddress: "192.0.2.99")))
        #expect(try await Self.check(resolver, ip: "192.0.2.25", sender: "alice@example.com") == "fail")
        #expect(server.queries.count == 8)
        await server.stop()
    }
}
