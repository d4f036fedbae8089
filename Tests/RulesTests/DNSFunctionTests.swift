import DNS
import Rules
import Testing

@Suite("dns.* functions")
struct DNSFunctionTests {
    /// Runs `body` at connect and returns the text of the accept reply.
    func evaluate(_ body: String, faults: [(String, ZoneFault)] = []) async throws -> StageResult {
        let harness = try Harness(script(.connect, body))
        for (name, fault) in faults { harness.resolver.setFault(fault, for: name) }
        return await harness.run(.connect)
    }

    func text(_ body: String, faults: [(String, ZoneFault)] = []) async throws -> String? {
        let result = try await self.evaluate(body, faults: faults)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        return result.verdict.reply?.text
    }

    @Test("dns.lookup outcomes")
    func lookup() async throws {
        let body = "local a, o = dns.lookup(NAME) return accept(reply(250, '2.0.0', o .. ':' .. table.concat(a, ',')))"
        #expect(try await self.text(body.replacingOccurrences(of: "NAME", with: "'HOST.test.'")) == "ok:192.0.2.10")
        #expect(try await self.text(body.replacingOccurrences(of: "NAME", with: "'missing.test'")) == "nxdomain:")
        #expect(try await self.text(body.replacingOccurrences(of: "NAME", with: "'txtonly.test'")) == "nodata:")
        #expect(try await self.text(body.replacingOccurrences(of: "NAME", with: "'v6only.test'")) == "ok:2001:db8::13")
    }

    @Test("dns.rlookup, and an invalid IP is a script error")
    func rlookup() async throws {
        let body = "local n, o = dns.rlookup(IP) return accept(reply(250, '2.0.0', o .. ':' .. table.concat(n, ',')))"
        #expect(try await self.text(body.replacingOccurrences(of: "IP", with: "'192.0.2.10'")) == "ok:host.test")
        #expect(try await self.text(body.replacingOccurrences(of: "IP", with: "'2001:db8::10'")) == "ok:host.test")
        #expect(try await self.text(body.replacingOccurrences(of: "IP", with: "'192.0.2.200'")) == "nxdomain:")
        let bad = try await self.evaluate("dns.rlookup('999.1.1.1')")
        #expect(bad.verdict.reply == .localError)
        #expect(bad.failure?.contains("test.lua:4: dns.rlookup: invalid IP address '999.1.1.1'") == true, "\(bad.failure ?? "")")
        let badName = try await self.evaluate("dns.lookup(string.rep('a', 64) .. '.test')")
        #expect(badName.failure?.contains("label is longer than 63") == true)
        let notString = try await self.evaluate("dns.lookup({})")
        #expect(notString.failure?.contains("expected a domain name string, got table") == true)
    }

    @Test("dns.query returns typed records")
    func query() async throws {
        #expect(try await self.text("local r = dns.query('mx.test', 'MX') return accept(reply(250, '2.0.0', #r .. ' ' .. r[1].type .. ' ' .. r[1].preference))") == "3 MX 10")
        #expect(try await self.text("local r = dns.query('txtonly.test', 'TXT') return accept(reply(250, '2.0.0', r[1].text))") == "v=spf1 -all")
        #expect(try await self.text("local r = dns.query('srv.test', 'SRV') return accept(reply(250, '2.0.0', r[1].target .. ':' .. r[1].port))") == "host.test:25")
        #expect(try await self.text("local r = dns.query('test', 'SOA') return accept(reply(250, '2.0.0', r[1].mname))") == "ns.test")
        #expect(try await self.text("local r = dns.query('alias.test', 'MX') return accept(reply(250, '2.0.0', r.chain[1].target .. ' ' .. #r))") == "mx.test 3")
        #expect(try await self.text("local r, o = dns.query('missing.test', 'A') return accept(reply(250, '2.0.0', o .. #r))") == "nxdomain0")
        let bad = try await self.evaluate("dns.query('mx.test', 'BOGUS')")
        #expect(bad.failure?.contains("unknown record type 'BOGUS'") == true)
    }

    @Test("transient failures defer with 451 4.4.3 when uncaught", arguments: [ZoneFault.timeout, .servfail, .refused])
    func uncaught(fault: ZoneFault) async throws {
        let result = try await self.evaluate("dns.lookup('host.test') return accept()", faults: [("host.test", fault)])
        #expect(result.verdict.description == "defer 451 4.4.3 Directory server failure, try again later")
        #expect(result.failure?.contains("DNS") == true)
    }

    @Test("transient failures are catchable with pcall, as typed errors")
    func caught() async throws {
        let body = """
        local ok, err = pcall(dns.lookup, 'host.test')
        if ok then return reject() end
        return accept(reply(250, '2.0.0', err.kind .. ' ' .. err.name .. ' ' .. err.type .. ' ' .. tostring(err)))
        """
        #expect(try await self.text(body, faults: [("host.test", .timeout)]) == "timeout host.test A DNS timeout for host.test/A")
        #expect(try await self.text(body, faults: [("host.test", .servfail)])?.hasPrefix("servfail") == true)
        // The same through the yielding path: the answer arrives after the coroutine suspended.
        let harness = try Harness(script(.connect, body))
        harness.resolver.delay = .milliseconds(20)
        harness.resolver.setFault(.timeout, for: "host.test")
        let delayed = await harness.run(.connect)
        #expect(delayed.verdict.reply?.text == "timeout host.test A DNS timeout for host.test/A")
    }

    @Test("dns.locate_mx: mx, implicit, null, none, CNAME'd domain")
    func locateMX() async throws {
        let body = """
        local r = dns.locate_mx(NAME)
        local hosts = {}
        for i, mx in ipairs(r) do hosts[i] = mx.preference .. ' ' .. mx.host end
        return accept(reply(250, '2.0.0', r.kind .. ':' .. table.concat(hosts, ',')))
        """
        func run(_ name: String) async throws -> String? { try await self.text(body.replacingOccurrences(of: "NAME", with: "'\(name)'")) }
        let mx = try #require(try await run("mx.test"))
        #expect(mx == "mx:10 mx1.mx.test,10 mx2.mx.test,20 mx3.mx.test" || mx == "mx:10 mx2.mx.test,10 mx1.mx.test,20 mx3.mx.test")
        #expect(try await run("implicit.test") == "implicit:0 implicit.test")
        #expect(try await run("nullmx.test") == "null:")
        #expect(try await run("missing.test") == "none:")
        #expect(try await run("txtonly.test") == "none:")
        let alias = try #require(try await run("alias.test"))
        #expect(alias.hasSuffix("20 mx3.mx.test") && alias.hasPrefix("mx:10 mx"))
    }

    @Test("equal MX preferences appear in both orders over many runs")
    func shuffle() async throws {
        let harness = try Harness(script(.connect, "return accept(reply(250, '2.0.0', dns.locate_mx('mx.test')[1].host))"))
        var firsts = Set<String>()
        for _ in 0..<64 { firsts.insert(await harness.run(.connect).verdict.reply?.text ?? "") }
        #expect(firsts == ["mx1.mx.test", "mx2.mx.test"])
    }

    @Test("dns.iprev for IPv4 and IPv6", arguments: [
        ("192.0.2.10", "pass host.test"), ("2001:db8::10", "pass host.test"),
        ("192.0.2.66", "fail"), ("2001:db8::99", "fail"),
        ("192.0.2.67", "fail"),
        ("192.0.2.200", "permerror"), ("2001:db8::200", "permerror"),
    ])
    func iprev(ip: String, expected: String) async throws {
        let body = "local r = dns.iprev('\(ip)') return accept(reply(250, '2.0.0', r.status .. (r.name and (' ' .. r.name) or '')))"
        #expect(try await self.text(body) == expected)
    }

    @Test("dns.iprev reports temperror instead of raising")
    func iprevTemperror() async throws {
        let body = "return accept(reply(250, '2.0.0', dns.iprev('192.0.2.77').status))"
        #expect(try await self.text(body, faults: [("broken.test", .servfail)]) == "temperror")
        #expect(try await self.text(body, faults: [("77.2.0.192.in-addr.arpa", .timeout)]) == "temperror")
        #expect(try await self.text("return accept(reply(250, '2.0.0', dns.iprev('2001:db8::10').status))",
                                    faults: [("0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", .servfail)]) == "temperror")
    }

    @Test("DNS queries appear in the trace")
    func trace() async throws {
        let result = try await self.evaluate("dns.iprev('192.0.2.10')")
        #expect(result.trace.contains(.dnsQuery(question: "10.2.0.192.in-addr.arpa/PTR", outcome: "ok", records: 1, cached: false)))
        #expect(result.trace.contains(.dnsCall(function: "dns.iprev", argument: "192.0.2.10", result: "pass host.test")))
    }
}
