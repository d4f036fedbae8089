import DNS
import Foundation
import Rules
import Testing

@Suite("Hostile scripts")
struct HostileScriptTests {
    static let limits = RuleLimits(instructionsPerStage: 2_000_000, memoryBytes: 8 << 20, stageTimeout: 2)

    @Test("each ends in 451 4.3.0, and the next transaction is fine", arguments: [
        ("while true do end", "instruction budget exceeded"),
        ("while true do pcall(function() while true do end end) end", "instruction budget exceeded"),
        ("local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end", "memory limit exceeded"),
        ("local s = string.rep('x', 100 * 1024 * 1024)", "memory limit exceeded"),
        ("local s = string.rep('x', 4 * 1024 * 1024 * 1024)", "too large"),
        ("local s = ('x'):rep(1 << 40)", "too large"),
        ("local t = {} for i = 1, 64 do t[i] = string.rep(tostring(i), 1 << 20) end", "memory limit exceeded"),
        ("os.execute('touch /tmp/vrules-pwned')", "attempt to call a nil value (field 'execute')"),
        ("io.open('/etc/passwd')", "undefined global 'io'"),
        ("load(string.dump(function() end))", "attempt to call a nil value (field 'dump')"),
        ("local f = load('\\27Lua\\84\\0') assert(f)", "assertion failed"),
        ("debug.getregistry()", "undefined global 'debug'"),
        ("require '/etc/passwd'", "invalid module name"),
        ("x = 1", "attempt to assign to global 'x'"),
        ("string.rep = nil", "read-only library 'string'"),
        ("getmetatable('').__index = {}", "attempt to index a boolean value"),
        ("rawset(_G, 'x', 1)", "cannot modify a read-only table"),
        ("setmetatable(dns, {})", "cannot change the metatable of a read-only table"),
        ("setmetatable({}, {__gc = function() end})", "__gc metamethods are not allowed"),
        ("collectgarbage('stop')", "only supports \"count\""),
        ("local co = coroutine.create(function() dns.lookup('host.test') end) coroutine.resume(co)", "undefined global 'coroutine'"),
        ("error(setmetatable({}, {__tostring = function() error('nested') end}))", "error object is a table value"),
        ("error(setmetatable({}, {__tostring = function() while true do end end}))", "error object is a table value"),
        ("error({})", "error object is a table value"),
        ("error()", "nil"),
        // Cut as a log message is (the failure is logged for each request that meets it).
        ("error(string.rep('x', 3 * 1024 * 1024))", "xxx… (3141644 bytes more)"),
        ("package.loadlib('x', 'y')", "undefined global 'package'"),
        ("dofile('/etc/passwd')", "undefined global 'dofile'"),
        ("loadfile('/etc/passwd')", "undefined global 'loadfile'"),
    ])
    func hostile(body: String, message: String) async throws {
        let harness = try Harness("""
        return {
          connect = { rule("hostile", function(ctx) \(body) end) },
          helo = { rule("good", function(ctx) if dns.iprev(ctx.client.ip).status == "pass" then return accept() end end) },
        }
        """, limits: Self.limits)
        let result = await harness.run(.connect)
        #expect(result.verdict.description == "defer 451 4.3.0 Local error in processing, try again later")
        #expect(result.decidedBy == "hostile")
        #expect(result.failure?.contains(message) == true, "\(result.failure ?? "no failure")")
        let next = await harness.run(.helo)
        #expect(next.verdict.kind == .accept, "\(next.failure ?? "")")
        let again = await harness.run(.connect)
        #expect(again.verdict.reply == .localError)
    }

    @Test("the stage deadline bounds a rule that waits on DNS")
    func deadlineDuringDNS() async throws {
        let harness = try Harness(script(.connect, "dns.lookup('slow.test') return accept()"),
                                  limits: RuleLimits(stageTimeout: 0.2))
        harness.resolver.setFault(.delay(.seconds(60)), for: "slow.test")
        let clock = ContinuousClock()
        let started = clock.now
        let result = await harness.run(.connect)
        // Bounded by the 0.2 s deadline, not the 60 s answer (with slack for a loaded CI machine).
        #expect(clock.now - started < .seconds(15))
        #expect(result.verdict.kind == .defer_)
        #expect(result.failure?.contains("stage deadline exceeded") == true)
    }

    @Test("a stage whose deadline passes while its lookup leads does not take the answer from a stage that joined it")
    func deadlineOfALeader() async throws {
        // Two engines on one network resolver, so that one question is asked by both: the
        // first leads the lookup and gives up at 0.2 s; the second joined it and may wait 5 s.
        let network = try await NetworkBackend(records: try ZoneFile.parse(testZone))
        network.faults.setFault(.delay(.milliseconds(600)), for: "slow.test")
        let body = "local a = dns.lookup('slow.test') if a[1] == '192.0.2.40' then return accept() end return reject()"
        let impatient = try RuleEngine(source: script(.connect, body), path: "a.lua", resolvers: SingleResolver(network.resolver),
                                       limits: RuleLimits(stageTimeout: 0.2))
        let patient = try RuleEngine(source: script(.connect, body), path: "b.lua", resolvers: SingleResolver(network.resolver),
                                     limits: RuleLimits(stageTimeout: 5))
        async let first = impatient.evaluate(.connect, in: await impatient.beginTransaction(defaultSession))
        // The second joins only once the first leads: its query has reached the server (a fixed
        // sleep here lost the race on a loaded machine, and the second led instead).
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(5)
        while network.server.queries.filter({ $0.question.name == "slow.test" }).isEmpty && clock.now < giveUp {
            try await Task.sleep(for: .milliseconds(2))
        }
        let second = await patient.evaluate(.connect, in: await patient.beginTransaction(defaultSession))
        let led = await first
        #expect(led.verdict.kind == .defer_)
        #expect(led.failure?.contains("stage deadline exceeded") == true)
        #expect(second.verdict.kind == .accept, "\(second.failure ?? "")")
        // The cancelled query, then the one the joined stage asked again.
        #expect(network.server.queries.filter { $0.question.name == "slow.test" }.count == 2)
    }

    @Test("a rule that logs in a loop fills the log with [limits] log_lines per stage, then one line that says the rest are dropped")
    func logFlood() async throws {
        let lines = LockedLines()
        let source = """
        for i = 1, 8 do log.info("loading", i) end
        return {
          connect = { rule("flood", function(ctx) for i = 1, 50000 do log.info("line", i) end return accept() end) },
          helo = {
            action("two", function(ctx) log.warn("a") log.warn("b") end),
            rule("three", function(ctx) for i = 1, 3 do log.error("c", i) end end),
          },
        }
        """
        let engine = try RuleEngine(source: source, path: "flood.lua", resolvers: SingleResolver(ZoneResolver(records: [])),
                                    limits: RuleLimits(logLinesPerStage: 4), logHandler: { lines.append("\($0.stage?.rawValue ?? "load") \($0.rule ?? "-") \($0.level): \($0.message)") })
        let transaction = await engine.beginTransaction(defaultSession)
        let connect = await engine.evaluate(.connect, in: transaction)
        // The stage is not failed for it: its rule runs to its verdict.
        #expect(connect.verdict.kind == .accept)
        let helo = await engine.evaluate(.helo, in: transaction)
        // Each stage counts its own lines, all of its rules together.
        let notice = "are dropped ([limits] log_lines)"
        #expect(lines.all == [
            "load - info: loading 1", "load - info: loading 2", "load - info: loading 3", "load - info: loading 4",
            "load - warn: log lines past 4 in one load \(notice)",
            "connect flood info: line 1", "connect flood info: line 2", "connect flood info: line 3", "connect flood info: line 4",
            "connect flood warn: log lines past 4 in one stage \(notice)",
            "helo two warn: a", "helo two warn: b", "helo three error: c 1", "helo three error: c 2",
            "helo three warn: log lines past 4 in one stage \(notice)",
        ])
        // The trace `vrules run` prints and `vrules test` matches holds the same lines.
        #expect(connect.trace.filter { if case .log = $0 { true } else { false } }.count == 5)
        #expect(helo.trace.contains(.log(level: "warn", rule: "three", message: "log lines past 4 in one stage \(notice)")))
        #expect(!helo.trace.contains(.log(level: "error", rule: "three", message: "c 3")))

        // `log_lines = 0` silences the rules, notice included; the observer still counts.
        let silenced = LockedLines(), dropped = LockedLines()
        let quiet = try RuleEngine(source: source, path: "flood.lua", resolvers: SingleResolver(ZoneResolver(records: [])),
                                   limits: RuleLimits(logLinesPerStage: 0), logHandler: { silenced.append($0.message) })
        await quiet.observeStageBounds { dropped.append($0.rawValue) }
        let quietTransaction = await quiet.beginTransaction(defaultSession)
        #expect(await quiet.evaluate(.helo, in: quietTransaction).trace.allSatisfy { if case .log = $0 { false } else { true } })
        #expect(silenced.all.isEmpty, "\(silenced.all)")
        #expect(dropped.all == Array(repeating: "log_lines", count: 5))
    }

    @Test("a rule that loops over DNS calls asks at most [limits] dns_calls per stage; the calls past them raise and ask nothing")
    func dnsCallFlood() async throws {
        let harness = try Harness("""
        return {
          connect = { rule("flood", function(ctx)
            local refused = 0
            for i = 1, 1000 do
              local ok, err = pcall(dns.lookup, "n" .. i .. ".test")
              if not ok and tostring(err):find("DNS calls past 4 in one stage", 1, true) then refused = refused + 1 end
            end
            -- spf.check_host is a DNS call too.
            local ok = pcall(spf.check_host, "192.0.2.1", "host.test", "a@host.test")
            return accept(reply(250, "2.0.0", "refused=" .. refused .. " spf=" .. tostring(ok)))
          end) },
          helo = { rule("fresh count", function(ctx)
            dns.lookup("host.test") dns.lookup("host.test") dns.lookup("host.test") dns.lookup("host.test")
            dns.lookup("host.test")
          end) },
        }
        """, limits: RuleLimits(dnsCallsPerStage: 4))
        let connect = await harness.run(.connect)
        #expect(connect.reply.text == "refused=996 spf=false")
        let calls = connect.trace.compactMap { event -> String? in
            if case .dnsCall(let function, let argument, _) = event { "\(function)(\(argument))" } else { nil }
        }
        #expect(calls == ["dns.lookup(n1.test)", "dns.lookup(n2.test)", "dns.lookup(n3.test)", "dns.lookup(n4.test)"])
        let asked = Set(connect.trace.compactMap { event -> String? in
            if case .dnsQuery(let question, _, _, _, _) = event { String(question.prefix { $0 != "/" }) } else { nil }
        })
        #expect(asked == ["n1.test", "n2.test", "n3.test", "n4.test"], "\(asked)")
        // Each stage counts its own calls; uncaught, the error defers the stage as a script error.
        let helo = await harness.run(.helo)
        #expect(helo.verdict.reply == .localError)
        #expect(helo.failure == "rule 'fresh count': test.lua:14: DNS calls past 4 in one stage ([limits] dns_calls)", "\(helo.failure ?? "")")
    }

    @Test("the stage deadline bounds a busy rule")
    func deadlineCPU() async throws {
        let harness = try Harness(script(.connect, "local x = 0 while true do x = x + 1 end"),
                                  limits: RuleLimits(instructionsPerStage: .max, stageTimeout: 0.2))
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains("stage deadline exceeded") == true)
    }
}

/// Lines a log handler saw, from whichever thread it ran on.
final class LockedLines: @unchecked Sendable {
    // @unchecked: `lines` is only touched with `lock` held.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        self.lock.lock()
        self.lines.append(line)
        self.lock.unlock()
    }

    var all: [String] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.lines
    }
}
