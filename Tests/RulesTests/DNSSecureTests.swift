import DNS
import Rules
import Testing

/// `secure` on every `dns.*` result, and bogus answers as DNS errors, through the Lua API
/// over the zone resolver with `$DNSSEC` marks.
@Suite("dns.* results carry secure; bogus answers are DNS errors")
struct DNSSecureTests {
    static let zone = """
        $ORIGIN signed.test.
        $TTL 300
        $DNSSEC secure
        @            SOA ns hostmaster 1 3600 600 86400 300
        @            MX 10 mail
        mail         A 192.0.2.25
        mail         AAAA 2001:db8::25
        implicit     A 192.0.2.30
        toplain      CNAME www.plain.test.
        tobad        CNAME www.bad.test.
        $ORIGIN plain.test.
        @            MX 10 mail
        mail         A 192.0.2.26
        www          A 192.0.2.80
        $ORIGIN bad.test.
        $DNSSEC bogus "RRSIG expired 2026-11-20 for bad.test/MX"
        @            MX 10 mail.signed.test.
        www          A 192.0.2.66
        $ORIGIN slow.test.
        $DNSSEC indeterminate "DNSKEY of slow.test could not be fetched"
        www          A 192.0.2.67
        $ORIGIN 2.0.192.in-addr.arpa.
        $DNSSEC secure
        25           PTR mail.signed.test.
        26           PTR mail.plain.test.
        66           PTR www.bad.test.
        $ORIGIN bl.test.
        $DNSSEC secure
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.2
        $ORIGIN plainbl.test.
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.2
        $ORIGIN badbl.test.
        $DNSSEC bogus "no DS matches DNSKEY of badbl.test"
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.2
        """

    /// Runs `body` as a connect rule; returns the stage result and `ctx.vars`.
    func run(_ body: String) async throws -> (StageResult, [String: String]) {
        let resolver = ZoneResolver(contents: try ZoneFile.parseContents(Self.zone))
        let engine = try RuleEngine(source: script(.connect, body), path: "test.lua", resolvers: SingleResolver(resolver))
        let transaction = await engine.beginTransaction(defaultSession)
        let result = await engine.evaluate(.connect, in: transaction)
        let vars = await engine.vars(of: transaction)
        await engine.endTransaction(transaction)
        return (result, vars)
    }

    func secureFlags(_ expressions: [String]) async throws -> [String] {
        let body = expressions.enumerated().map { "ctx.vars.v\($0.offset) = tostring(\($0.element))" }.joined(separator: "\n")
        let (result, vars) = try await self.run(body)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        return expressions.indices.map { vars["v\($0)"] ?? "nil" }
    }

    @Test func lookupAndRlookup() async throws {
        #expect(try await self.secureFlags([
            "dns.lookup('mail.signed.test').secure",
            "dns.lookup('nope.signed.test').secure",     // a denial in a signed zone
            "dns.lookup('implicit.signed.test').secure",  // A, and the proof that there is no AAAA
            "dns.lookup('mail.plain.test').secure",
            "dns.lookup('toplain.signed.test').secure",   // a chain into an unsigned zone
            "dns.rlookup('192.0.2.25').secure",
            "dns.rlookup('2001:db8::25').secure",         // nothing marked under ip6.arpa
        ]) == ["true", "true", "true", "false", "false", "true", "false"])
    }

    @Test func locateMXIprevQueryAndDNSBL() async throws {
        #expect(try await self.secureFlags([
            "dns.locate_mx('signed.test').secure",
            "dns.locate_mx('implicit.signed.test').kind .. ' ' .. tostring(dns.locate_mx('implicit.signed.test').secure)",
            "dns.locate_mx('plain.test').secure",
            "dns.iprev('192.0.2.25').status .. ' ' .. tostring(dns.iprev('192.0.2.25').secure)",
            "dns.iprev('192.0.2.26').status .. ' ' .. tostring(dns.iprev('192.0.2.26').secure)",
            "dns.query('signed.test', 'MX').secure",
            "dns.query('toplain.signed.test', 'A').secure",
            "#dns.query('toplain.signed.test', 'A').chain",
            "dns.dnsbl('192.0.2.66', { 'bl.test', 'plainbl.test' })[1].secure",
            "dns.dnsbl('192.0.2.66', { 'bl.test', 'plainbl.test' })['plainbl.test'].secure",
        ]) == ["true", "implicit true", "false", "pass true", "pass false", "true", "false", "1", "true", "false"])
    }

    @Test func anUncaughtBogusAnswerDefersWithTheReason() async throws {
        let (result, _) = try await self.run("dns.locate_mx('bad.test') return accept()")
        #expect(result.verdict.description == "defer 451 4.4.3 Directory server failure, try again later")
        #expect(result.failure == "rule 'under test': DNS bogus for bad.test/MX: RRSIG expired 2026-11-20 for bad.test/MX")
        // A secure CNAME into a bogus zone is bogus.
        let (chained, _) = try await self.run("dns.lookup('tobad.signed.test') return accept()")
        #expect(chained.verdict.reply == .directoryFailure)
        #expect(chained.failure?.contains("DNS bogus for tobad.signed.test/A: RRSIG expired") == true, "\(chained.failure ?? "")")
        #expect(chained.trace.contains(.dnsQuery(question: "tobad.signed.test/A", outcome: "bogus", records: 0, cached: false,
                                                 security: DNSSecurity(.bogus, reason: "RRSIG expired 2026-11-20 for bad.test/MX"))))
    }

    @Test func aBogusAnswerIsATypedErrorThatPcallCatches() async throws {
        let (result, vars) = try await self.run("""
            local ok, err = pcall(dns.query, 'www.bad.test', 'A')
            ctx.vars.caught = tostring(ok) .. ' ' .. err.kind .. ' ' .. err.name .. ' ' .. err.type .. ' ' .. err.detail
            local ok2, err2 = pcall(dns.lookup, 'www.slow.test')
            ctx.vars.slow = err2.kind .. ' ' .. err2.detail
            ctx.vars.text = tostring(err)
            """)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["caught"] == "false bogus www.bad.test A RRSIG expired 2026-11-20 for bad.test/MX")
        #expect(vars["slow"] == "servfail DNSSEC status indeterminate: DNSKEY of slow.test could not be fetched")
        #expect(vars["text"] == "DNS bogus for www.bad.test/A: RRSIG expired 2026-11-20 for bad.test/MX")
    }

    @Test func functionsThatNeverRaiseTurnBogusIntoTemperror() async throws {
        let (result, vars) = try await self.run("""
            local r = dns.iprev('192.0.2.66')
            ctx.vars.iprev = r.status .. ' ' .. tostring(r.secure)
            local l = dns.dnsbl('192.0.2.66', 'badbl.test')[1]
            ctx.vars.dnsbl = l.status .. ' ' .. l.reason .. ' ' .. tostring(l.secure)
            """)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["iprev"] == "temperror false")
        #expect(vars["dnsbl"] == "temperror DNS bogus false")
    }
}
