import DNS
import Rules
import Testing

/// The `dns.*` functions, each run against the zone resolver and against the native
/// network resolver (asking an in-process server that serves the same zone).
@Suite("dns.* functions")
struct DNSFunctionTests {
    func evaluate(_ body: String, _ backend: Backend, faults: [(String, ZoneFault)] = []) async throws -> StageResult {
        let harness = try await Harness(script(.connect, body), backend: backend)
        for (name, fault) in faults { harness.faults.setFault(fault, for: name) }
        return await harness.run(.connect)
    }

    func text(_ body: String, _ backend: Backend, faults: [(String, ZoneFault)] = []) async throws -> String? {
        let result = try await self.evaluate(body, backend, faults: faults)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        return result.verdict.reply?.text
    }

    @Test("dns.lookup outcomes", arguments: Backend.allCases)
    func lookup(backend: Backend) async throws {
        let body = "local a, o = dns.lookup(NAME) return accept(reply(250, '2.0.0', o .. ':' .. table.concat(a, ',')))"
        func run(_ name: String) async throws -> String? { try await self.text(body.replacingOccurrences(of: "NAME", with: name), backend) }
        #expect(try await run("'HOST.test.'") == "ok:192.0.2.10")
        #expect(try await run("'missing.test'") == "nxdomain:")
        #expect(try await run("'txtonly.test'") == "nodata:")
        #expect(try await run("'v6only.test'") == "ok:2001:db8::13")
    }

    /// A bounce's `ctx.mail_from.domain` is "": asked about as the root zone, it would have no
    /// route, and a rule refusing unroutable senders would refuse every bounce.
    @Test("a bounce's empty sender domain is a script error naming it, never a question; \".\" still asks the root", arguments: [
        "dns.locate_mx(ctx.mail_from.domain)", "dns.lookup(ctx.mail_from.domain)", "dns.query(ctx.mail_from.domain, 'MX')",
        "dns.dnsbl(ctx.mail_from.domain, 'dbl.example')",
    ])
    func bounceDomain(call: String) async throws {
        let harness = try Harness(script(.mail, "local route = \(call) return accept()"))
        var bounce = defaultSession
        bounce.mailFrom = MailAddress("")
        let result = await harness.run(.mail, bounce)
        #expect(result.verdict.reply == .localError)
        let function = String(call.prefix { $0 != "(" })
        #expect(result.failure?.contains("\(function): empty domain name (a bounce's ctx.mail_from.domain and <postmaster>'s "
                                         + "ctx.rcpt.domain are \"\": check for them first") == true, "\(result.failure ?? "no failure")")
        #expect(harness.resolver.questionCount == 0)

        let root = try Harness(script(.mail, "local r = dns.locate_mx('.') return accept(reply(250, '2.0.0', r.kind))"))
        #expect(await root.run(.mail, bounce).verdict.reply?.text == "none")
        #expect(root.resolver.questionCount > 0)
    }

    /// Inside a C function's callback a call cannot yield. It is refused even when its answer
    /// is at hand (zone files, a name asked before and cached), so a script that passes its
    /// tests on zone files does not defer in production only when the answer must be waited for.
    @Test("DNS inside a C function's callback is refused, answer at hand or not", arguments: Backend.allCases, [
        "table.sort(t, function(a, b) dns.lookup('host.test') return a < b end)",
        "string.gsub('ab', '%w', function(c) dns.lookup('host.test') end)",
        "local s = tostring(setmetatable({}, {__tostring = function() dns.lookup('host.test') return 'x' end}))",
        "local s = string.format('%s', setmetatable({}, {__tostring = function() return dns.lookup('host.test')[1] end}))",
        "table.sort(t, function(a, b) spf.check_host('192.0.2.10', 'host.test', 'a@host.test') return a < b end)",
    ])
    func notInCallbacks(backend: Backend, body: String) async throws {
        // The first lookup leaves the answer in the network resolver's cache.
        let result = try await self.evaluate("dns.lookup('host.test') local t = {3, 1, 2} \(body) return accept()", backend)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains("cannot wait for DNS inside a callback of a C function") == true,
                "\(result.failure ?? "no failure")")
    }

    @Test("DNS in a metamethod the VM calls, a to-be-closed variable and pcall waits as anywhere",
          arguments: Backend.allCases)
    func inYieldableCallbacks(backend: Backend) async throws {
        let body = """
        local seen = {}
        local t = setmetatable({}, {__index = function(_, name) return dns.lookup(name)[1] end})
        seen[#seen + 1] = t['host.test']
        do
          local closing <close> = setmetatable({}, {__close = function() seen[#seen + 1] = dns.lookup('mx2.mx.test')[1] end})
        end
        local ok, addresses = pcall(dns.lookup, 'mx1.mx.test')
        seen[#seen + 1] = addresses[1]
        return accept(reply(250, '2.0.0', table.concat(seen, ' ')))
        """
        #expect(try await self.text(body, backend) == "192.0.2.10 192.0.2.22 192.0.2.21")
    }

    @Test("dns.query: a TTL of 68 years is a day, from the zone file as from the network", arguments: Backend.allCases)
    func longTTL(backend: Backend) async throws {
        #expect(try await self.text("local r = dns.query('forever.test', 'A') return accept(reply(250, '2.0.0', tostring(r[1].ttl)))", backend) == "86400")
        #expect(try await self.text("local r = dns.query('host.test', 'A') return accept(reply(250, '2.0.0', tostring(r[1].ttl)))", backend) == "300")
    }

    @Test("dns.rlookup, and an invalid IP is a script error", arguments: Backend.allCases)
    func rlookup(backend: Backend) async throws {
        let body = "local n, o = dns.rlookup(IP) return accept(reply(250, '2.0.0', o .. ':' .. table.concat(n, ',')))"
        func run(_ ip: String) async throws -> String? { try await self.text(body.replacingOccurrences(of: "IP", with: ip), backend) }
        #expect(try await run("'192.0.2.10'") == "ok:host.test")
        #expect(try await run("'2001:db8::10'") == "ok:host.test")
        #expect(try await run("'192.0.2.200'") == "nxdomain:")
        let bad = try await self.evaluate("dns.rlookup('999.1.1.1')", backend)
        #expect(bad.verdict.reply == .localError)
        #expect(bad.failure?.contains("test.lua:4: dns.rlookup: invalid IP address '999.1.1.1'") == true, "\(bad.failure ?? "")")
        let badName = try await self.evaluate("dns.lookup(string.rep('a', 64) .. '.test')", backend)
        #expect(badName.failure?.contains("label is longer than 63") == true)
        let notString = try await self.evaluate("dns.lookup({})", backend)
        #expect(notString.failure?.contains("expected a domain name string, got table") == true)
    }

    @Test("dns.query returns typed records", arguments: Backend.allCases)
    func query(backend: Backend) async throws {
        #expect(try await self.text("local r = dns.query('mx.test', 'MX') return accept(reply(250, '2.0.0', #r .. ' ' .. r[1].type .. ' ' .. r[1].preference))", backend) == "3 MX 10")
        #expect(try await self.text("local r = dns.query('txtonly.test', 'TXT') return accept(reply(250, '2.0.0', r[1].text))", backend) == "v=spf1 -all")
        #expect(try await self.text("local r = dns.query('srv.test', 'SRV') return accept(reply(250, '2.0.0', r[1].target .. ':' .. r[1].port))", backend) == "host.test:25")
        #expect(try await self.text("local r = dns.query('test', 'SOA') return accept(reply(250, '2.0.0', r[1].mname))", backend) == "ns.test")
        #expect(try await self.text("local r = dns.query('alias.test', 'MX') return accept(reply(250, '2.0.0', r.chain[1].target .. ' ' .. #r))", backend) == "mx.test 3")
        #expect(try await self.text("local r, o = dns.query('missing.test', 'A') return accept(reply(250, '2.0.0', o .. #r))", backend) == "nxdomain0")
        let bad = try await self.evaluate("dns.query('mx.test', 'BOGUS')", backend)
        #expect(bad.failure?.contains("unknown record type 'BOGUS'") == true)
    }

    @Test("transient failures defer with 451 4.4.3 when uncaught",
          arguments: Backend.allCases, [ZoneFault.timeout, .servfail, .refused])
    func uncaught(backend: Backend, fault: ZoneFault) async throws {
        let result = try await self.evaluate("dns.lookup('host.test') return accept()", backend, faults: [("host.test", fault)])
        #expect(result.verdict.description == "defer 451 4.4.3 Directory server failure, try again later")
        #expect(result.failure?.contains("DNS") == true)
    }

    @Test("transient failures are catchable with pcall, as typed errors", arguments: Backend.allCases)
    func caught(backend: Backend) async throws {
        let body = """
        local ok, err = pcall(dns.lookup, 'host.test')
        if ok then return reject() end
        return accept(reply(250, '2.0.0', err.kind .. ' ' .. err.name .. ' ' .. err.type .. ' ' .. tostring(err)))
        """
        #expect(try await self.text(body, backend, faults: [("host.test", .timeout)]) == "timeout host.test A DNS timeout for host.test/A")
        #expect(try await self.text(body, backend, faults: [("host.test", .servfail)])?.hasPrefix("servfail") == true)
        // The same through the yielding path: the answer arrives after the coroutine suspended.
        let harness = try await Harness(script(.connect, body), backend: backend)
        harness.faults.delay = .milliseconds(20)
        harness.faults.setFault(.timeout, for: "host.test")
        let delayed = await harness.run(.connect)
        #expect(delayed.verdict.reply?.text == "timeout host.test A DNS timeout for host.test/A")
    }

    @Test("dns.locate_mx: mx, implicit, null, none, CNAME'd domain", arguments: Backend.allCases)
    func locateMX(backend: Backend) async throws {
        let body = """
        local r = dns.locate_mx(NAME)
        local hosts = {}
        for i, mx in ipairs(r) do hosts[i] = mx.preference .. ' ' .. mx.host end
        return accept(reply(250, '2.0.0', r.kind .. ':' .. table.concat(hosts, ',')))
        """
        func run(_ name: String) async throws -> String? { try await self.text(body.replacingOccurrences(of: "NAME", with: "'\(name)'"), backend) }
        let mx = try #require(try await run("mx.test"))
        #expect(mx == "mx:10 mx1.mx.test,10 mx2.mx.test,20 mx3.mx.test" || mx == "mx:10 mx2.mx.test,10 mx1.mx.test,20 mx3.mx.test")
        #expect(try await run("implicit.test") == "implicit:0 implicit.test")
        #expect(try await run("nullmx.test") == "null:")
        #expect(try await run("missing.test") == "none:")
        #expect(try await run("txtonly.test") == "none:")
        let alias = try #require(try await run("alias.test"))
        #expect(alias.hasSuffix("20 mx3.mx.test") && alias.hasPrefix("mx:10 mx"))
    }

    @Test("equal MX preferences appear in both orders over many runs", arguments: Backend.allCases)
    func shuffle(backend: Backend) async throws {
        let harness = try await Harness(script(.connect, "return accept(reply(250, '2.0.0', dns.locate_mx('mx.test')[1].host))"), backend: backend)
        var firsts = Set<String>()
        for _ in 0..<64 { firsts.insert(await harness.run(.connect).verdict.reply?.text ?? "") }
        #expect(firsts == ["mx1.mx.test", "mx2.mx.test"])
    }

    @Test("dns.iprev for IPv4 and IPv6", arguments: Backend.allCases, [
        ("192.0.2.10", "pass host.test"), ("2001:db8::10", "pass host.test"),
        ("192.0.2.66", "fail"), ("2001:db8::99", "fail"),
        ("192.0.2.67", "fail"),
        ("192.0.2.200", "permerror"), ("2001:db8::200", "permerror"),
    ])
    func iprev(backend: Backend, pair: (String, String)) async throws {
        let body = "local r = dns.iprev('\(pair.0)') return accept(reply(250, '2.0.0', r.status .. (r.name and (' ' .. r.name) or '')))"
        #expect(try await self.text(body, backend) == pair.1)
    }

    @Test("dns.iprev reports temperror instead of raising", arguments: Backend.allCases)
    func iprevTemperror(backend: Backend) async throws {
        let body = "return accept(reply(250, '2.0.0', dns.iprev('192.0.2.77').status))"
        #expect(try await self.text(body, backend, faults: [("broken.test", .servfail)]) == "temperror")
        #expect(try await self.text(body, backend, faults: [("77.2.0.192.in-addr.arpa", .timeout)]) == "temperror")
        #expect(try await self.text("return accept(reply(250, '2.0.0', dns.iprev('2001:db8::10').status))", backend,
                                    faults: [("0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", .servfail)]) == "temperror")
    }

    @Test("DNS queries appear in the trace", arguments: Backend.allCases)
    func trace(backend: Backend) async throws {
        let result = try await self.evaluate("dns.iprev('192.0.2.10')", backend)
        #expect(result.trace.contains(.dnsQuery(question: "10.2.0.192.in-addr.arpa/PTR", outcome: "ok", records: 1, cached: false)))
        #expect(result.trace.contains(.dnsCall(function: "dns.iprev", argument: "192.0.2.10", result: "pass host.test")))
    }
}

@Suite("dns.dnsbl")
struct DNSBLFunctionTests {
    static let zone = """
        $ORIGIN zen.spamhaus.org.
        $TTL 300
        @            SOA ns hostmaster 1 3600 600 86400 300
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.2
        66.2.0.192   A 127.0.0.3
        66.2.0.192   TXT "first" "second"
        1.2.0.192    A 127.0.0.1
        spam.test    A 127.0.1.2
        $ORIGIN other.example.
        @            SOA ns hostmaster 1 3600 600 86400 300
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.9
        $ORIGIN plain.example.
        @            SOA ns hostmaster 1 3600 600 86400 300
        2.0.0.127    A 127.0.0.2
        66.2.0.192   A 127.0.0.1
        """

    @Test("results per zone, in order and by name, with codes and text")
    func results() async throws {
        let harness = try Harness(script(.connect, """
            local r = dns.dnsbl("192.0.2.66", { "zen.spamhaus.org", "other.example", "nothing.example" })
            ctx.vars.a = r[1].zone .. " " .. r[1].status .. " " .. table.concat(r[1].codes, ",") .. " " .. r[1].text
            ctx.vars.b = r["other.example"].status .. " " .. r[2].codes[1]
            ctx.vars.c = r[3].status .. " " .. #r[3].codes .. " " .. r[3].reason
            local one = dns.dnsbl("::ffff:192.0.2.66", "zen.spamhaus.org")
            ctx.vars.d = #one .. " " .. one[1].status
            ctx.vars.e = dns.dnsbl("192.0.2.1", "zen.spamhaus.org")[1].status
            ctx.vars.f = dns.dnsbl("192.0.2.66", "plain.example")[1].status
            """), zone: Self.zone)
        let transaction = await harness.engine.beginTransaction(defaultSession)
        let result = await harness.engine.evaluate(.connect, in: transaction)
        let vars = await harness.engine.vars(of: transaction)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["a"] == "zen.spamhaus.org listed 127.0.0.2,127.0.0.3 firstsecond")
        #expect(vars["b"] == "listed 127.0.0.9")  // an unknown zone: RFC 5782 codes
        // A zone with no data at all fails its test point 127.0.0.2: error, with the reason.
        #expect(vars["c"] == "error 0 the zone failed its health check: test point 127.0.0.2 is not listed (clean): the zone lists nothing or is gone")
        #expect(vars["d"] == "1 listed")
        // 127.0.0.1 is RFC 5782's "not listed" test point answer: never a listing.
        #expect(vars["e"] == "error")
        #expect(vars["f"] == "error")
    }

    @Test("transient failures are temperror per zone, never an exception")
    func temperror() async throws {
        let harness = try Harness(script(.connect, """
            local r = dns.dnsbl("192.0.2.66", { "zen.spamhaus.org", "other.example" })
            ctx.vars.s = r[1].status .. " " .. r[2].status .. " " .. r[1].reason
            """), zone: Self.zone)
        harness.resolver.setFault(.servfail, for: "66.2.0.192.zen.spamhaus.org")
        let transaction = await harness.engine.beginTransaction(defaultSession)
        let result = await harness.engine.evaluate(.connect, in: transaction)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(await harness.engine.vars(of: transaction)["s"] == "temperror listed DNS servfail")
    }

    /// A zone named from what a client sends (a script mistake) grew the health table, and the
    /// `vrules_dnsbl_zone_failing` series, by one entry per name, without end.
    @Test("the zones whose health is kept are bounded; past the bound a zone is asked without its test points")
    func healthBounded() async throws {
        let harness = try Harness(script(.connect, """
            local zones = {}
            for i = 1, 30 do zones[i] = "z" .. ctx.client.port .. "-" .. i .. ".example" end
            local r = dns.dnsbl("192.0.2.10", zones)
            ctx.vars.status = r[1].status
            """), zone: Self.zone)
        var session = defaultSession
        for batch in 0..<40 {  // 1,200 zones
            session.clientPort = batch
            let transaction = await harness.engine.beginTransaction(session)
            let result = await harness.engine.evaluate(.connect, in: transaction)
            #expect(result.failure == nil, "\(result.failure ?? "")")
        }
        #expect(await harness.engine.dnsblHealth.count == DNSBLHealth.maximumZones)
        // A zone past the bound: one question, for the subject alone.
        harness.resolver.resetQuestionLog()
        session.clientPort = 999
        let transaction = await harness.engine.beginTransaction(session)
        _ = await harness.engine.evaluate(.connect, in: transaction)
        #expect(harness.resolver.askedQuestions.filter { $0.name.hasSuffix("z999-1.example") }.map(\.name) == ["10.2.0.192.z999-1.example"])
    }

    /// It timed the waits (three of 2 s in a 5 s stage deadline), and failed on a loaded
    /// machine where a sleep's end came seconds late: it now counts the waits that overlap.
    @Test("every zone is asked at once: the three zones' questions wait at the same time")
    func concurrent() async throws {
        let harness = try Harness(script(.connect, """
            local r = dns.dnsbl("192.0.2.10", { "zen.spamhaus.org", "other.example", "plain.example" })
            if r[1].status ~= "clean" or r[2].status ~= "clean" or r[3].status ~= "clean" then error("not clean") end
            return accept()
            """), zone: Self.zone, limits: RuleLimits(stageTimeout: 60))
        for zone in ["zen.spamhaus.org", "other.example", "plain.example"] {
            harness.resolver.setFault(.delay(.seconds(2)), for: "10.2.0.192." + zone)
        }
        let result = await harness.run(.connect)
        #expect(result.verdict.kind == .accept, "\(result.verdict) \(result.failure ?? "")")
        #expect(harness.resolver.mostDelayedAtOnce == 3)
        // The same questions asked one after the other: no two wait at once.
        let sequential = try Harness(script(.connect, """
            for _, zone in ipairs({ "zen.spamhaus.org", "other.example", "plain.example" }) do
              dns.query("10.2.0.192." .. zone, "A")
            end
            return accept()
            """), zone: Self.zone, limits: RuleLimits(stageTimeout: 60))
        for zone in ["zen.spamhaus.org", "other.example", "plain.example"] {
            sequential.resolver.setFault(.delay(.milliseconds(200)), for: "10.2.0.192." + zone)
        }
        #expect(await sequential.run(.connect).verdict.kind == .accept)
        #expect(sequential.resolver.mostDelayedAtOnce == 1)
    }

    @Test("bad arguments are script errors", arguments: [
        ("dns.dnsbl('not an ip or name!', 'zen.spamhaus.org')", "neither an IP address nor a domain name"),
        ("dns.dnsbl(42, 'zen.spamhaus.org')", "expected an IP address or a domain name"),
        ("dns.dnsbl('192.0.2.1', 42)", "expected a zone or a list of zones"),
        ("dns.dnsbl('192.0.2.1', { 'a.example', 42 })", "zone 2 is a number"),
        ("dns.dnsbl('192.0.2.1', 'bad..zone')", "empty label"),
        ("dns.dnsbl('192.0.2.1', '')", "invalid domain name '': a blocklist zone cannot be the root"),
        ("dns.dnsbl('192.0.2.1', { 'zen.spamhaus.org', '.' })", "invalid domain name '.': a blocklist zone cannot be the root"),
        ("local z = {} for i = 1, 33 do z[i] = 'z' .. i .. '.example' end dns.dnsbl('192.0.2.1', z)", "at most 32 zones"),
    ])
    func badArguments(call: String, message: String) async throws {
        let harness = try Harness(script(.connect, call), zone: Self.zone)
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains(message) == true, "\(result.failure ?? "")")
    }
}

@Suite("spf.check and spf.check_host")
struct SPFFunctionTests {
    static let zone = """
        $ORIGIN spf.test.
        $TTL 300
        @            SOA ns hostmaster 1 3600 600 86400 300
        good         TXT "v=spf1 ip4:192.0.2.10 -all"
        soft         TXT "v=spf1 ~all"
        hostile      TXT "v=spf1 -all exp=why.hostile.spf.test"
        why.hostile  TXT "No mail from %{i}\\013\\010MAIL FROM:<x@evil.test>\\000 for %{d}"
        local        TXT "v=spf1 -all exp=why.local.spf.test"
        why.local    TXT "Rejected %{l} from %{i}"
        mail.helo    TXT "v=spf1 ip4:192.0.2.10 -all"
        """

    func run(_ body: String, session: SessionInfo = defaultSession, faults: [String] = []) async throws -> (StageResult, [String: String]) {
        let harness = try Harness(script(.mail, body), zone: Self.zone)
        for name in faults { harness.resolver.setFault(.servfail, for: name) }
        let transaction = await harness.engine.beginTransaction(session)
        let result = await harness.engine.evaluate(.mail, in: transaction)
        let vars = await harness.engine.vars(of: transaction)
        await harness.engine.endTransaction(transaction)
        return (result, vars)
    }

    @Test("check_host: pass, fail with the matching term, softfail, none")
    func checkHost() async throws {
        let (result, vars) = try await self.run("""
            local a = spf.check_host("192.0.2.10", "good.spf.test", "a@good.spf.test")
            local b = spf.check_host("192.0.2.99", "good.spf.test", "a@good.spf.test")
            ctx.vars.a = a.result .. " " .. a.domain .. " " .. a.identity .. " " .. a.mechanism
            ctx.vars.b = b.result .. " " .. b.mechanism
            ctx.vars.c = spf.check_host("192.0.2.99", "soft.spf.test", "a@soft.spf.test").result
            ctx.vars.d = spf.check_host("192.0.2.99", "nothing.spf.test", "a@nothing.spf.test").result
            ctx.vars.e = spf.check_host("::ffff:192.0.2.10", "good.spf.test", "a@good.spf.test").result
            """)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["a"] == "pass good.spf.test mailfrom ip4:192.0.2.10")
        #expect(vars["b"] == "fail -all")
        #expect(vars["c"] == "softfail")
        #expect(vars["d"] == "none")
        #expect(vars["e"] == "pass")
    }

    @Test("check(ctx): the MAIL FROM identity, or HELO for the null reverse-path")
    func sessionIdentity() async throws {
        var session = defaultSession
        session.mailFrom = MailAddress("alice@good.spf.test")
        let (_, vars) = try await self.run("local r = spf.check(ctx) ctx.vars.r = r.result .. ' ' .. r.identity .. ' ' .. r.domain",
                                           session: session)
        #expect(vars["r"] == "pass mailfrom good.spf.test")
        session.mailFrom = MailAddress("")
        session.helo = "mail.helo.spf.test"
        let (_, bounce) = try await self.run("local r = spf.check(ctx) ctx.vars.r = r.result .. ' ' .. r.identity .. ' ' .. r.domain",
                                             session: session)
        #expect(bounce["r"] == "pass helo mail.helo.spf.test")
    }

    @Test("check(ctx) at helo checks the HELO identity; at connect, with no identity yet, it is a script error")
    func earlyStages() async throws {
        let source = """
            return {
              connect = { rule("at connect", function(ctx) spf.check(ctx) end) },
              helo = { rule("at helo", function(ctx)
                local r = spf.check(ctx) ctx.vars.r = r.result .. ' ' .. r.identity .. ' ' .. r.domain
                ctx.vars.header = spf.received_header(r)
              end) },
            }
            """
        let harness = try Harness(source, zone: Self.zone)
        var session = defaultSession
        session.helo = "mail.helo.spf.test"
        let transaction = await harness.engine.beginTransaction(session)
        let connect = await harness.engine.evaluate(.connect, in: transaction)
        #expect(connect.verdict.reply == .localError)
        #expect(connect.failure?.contains("test.lua:2: spf.check(ctx): nothing to check yet (no HELO name, no MAIL FROM)") == true,
                "\(connect.failure ?? "no failure")")
        let helo = await harness.engine.evaluate(.helo, in: transaction)
        #expect(helo.failure == nil, "\(helo.failure ?? "")")
        let vars = await harness.engine.vars(of: transaction)
        await harness.engine.endTransaction(transaction)
        #expect(vars["r"] == "pass helo mail.helo.spf.test")
        #expect(vars["header"]?.hasPrefix("pass (mx.example: domain of mail.helo.spf.test designates 192.0.2.10 as permitted sender)") == true,
                "\(vars["header"] ?? "")")
    }

    @Test("DNS trouble is temperror, never an exception")
    func temperror() async throws {
        let (result, vars) = try await self.run("local r = spf.check_host('192.0.2.10', 'good.spf.test', 'a@good.spf.test') ctx.vars.r = r.result",
                                                faults: ["good.spf.test"])
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["r"] == "temperror")
    }

    @Test("a hostile explanation never reaches a reply with CR, LF or NUL")
    func hostileExplanation() async throws {
        // An exp= record with control characters is not a valid explanation (RFC 7208 §6.2):
        // ignored. A sender's local part with CR/LF brought in by %{l} is stripped of them.
        let (result, vars) = try await self.run("""
            local r = spf.check_host("192.0.2.99", "hostile.spf.test", "a@hostile.spf.test")
            ctx.vars.first = tostring(r.explanation)
            local s = spf.check_host("192.0.2.99", "local.spf.test", "evil\\r\\nRCPT TO:<x>\\0@local.spf.test")
            if s.result == "fail" then return reject(reply(550, "5.7.23", s.explanation or "SPF validation failed")) end
            """)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        #expect(vars["first"] == "nil")
        let reply = try #require(result.verdict.reply)
        #expect(reply.code == 550 && reply.enhanced == "5.7.23")
        #expect(reply.text.hasPrefix("Rejected evil"), "\(reply.text)")
        #expect(reply.text.hasSuffix("from 192.0.2.99"), "\(reply.text)")
        #expect(!reply.text.utf8.contains { $0 < 0x20 || $0 == 0x7f }, "\(reply.text)")
    }

    @Test("bad arguments are script errors", arguments: [
        ("spf.check_host('not an ip', 'good.spf.test', 'a@good.spf.test')", "invalid IP address"),
        ("spf.check_host('192.0.2.1', 42, 'a@b')", "expected a domain string"),
        ("spf.check_host('192.0.2.1', 'good.spf.test')", "expected a sender string"),
        ("spf.received_header({ result = 'bogus', domain = 'good.spf.test', client_ip = '192.0.2.1' })", "expected the result of spf.check"),
        ("spf.received_header({ result = 'pass' })", "expected the result of spf.check"),
        ("spf.received_header({ result = 'pass', domain = 'good.spf.test', client_ip = 42 })", "expected the result of spf.check"),
    ])
    func badArguments(call: String, message: String) async throws {
        let (result, _) = try await self.run(call)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains(message) == true, "\(result.failure ?? "")")
    }
}
