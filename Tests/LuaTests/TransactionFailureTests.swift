import DNS
import Lua
@testable import RuleTesting
@testable import Rules
import Testing

/// What reaches the Lua layer from a script or from the allocator, taken to its limits:
/// each failure ends its stage in 451 4.3.0, the host stays up, and the next transaction
/// gets its right verdicts.
@Suite("The engine survives failures in the Lua layer", .serialized)
struct TransactionFailureTests {
    static let zone = """
        $ORIGIN test.
        $TTL 300
        @        SOA ns.test. hostmaster.test. 1 3600 600 86400 300
        host     A   192.0.2.10
        mx       MX  10 host
        $ORIGIN 2.0.192.in-addr.arpa.
        10       PTR host.test.
        """

    /// A whole transaction's worth of work: DNS, strings, tables, ctx.vars, logs, replies.
    static let policy = """
        local seen = {}
        return {
          connect = {
            action("note", function(ctx) ctx.vars.client = ctx.client.ip .. ":" .. tostring(ctx.client.port) end),
            rule("iprev", function(ctx)
              local result = dns.iprev(ctx.client.ip)
              ctx.vars.iprev = result.status
              if result.status ~= "pass" then return reject(replies.rdns_failed) end
            end),
          },
          helo = {
            rule("helo", function(ctx)
              local labels = {}
              for label in ctx.helo:gmatch("[^.]+") do labels[#labels + 1] = label:upper() end
              ctx.vars.helo = table.concat(labels, "/")
              if #labels < 2 then return reject("550 5.7.1 bad HELO " .. ctx.helo:gsub("%W", "_")) end
            end),
          },
          mail = {
            rule("sender domain", function(ctx)
              local route = dns.locate_mx(ctx.mail_from.domain)
              log.info("route", route.kind, #route, string.format("%s=%d", ctx.mail_from.domain, #route))
              if route.kind == "none" then return reject(replies.unable_to_route) end
            end),
          },
          rcpt = {
            rule("recipient", function(ctx)
              local addresses = dns.lookup("host.test")
              local text = {}
              for i, a in ipairs(addresses) do text[i] = a end
              seen[#seen + 1] = table.concat(text, ",")
              if #seen > 100 then seen = {} end
              return accept(reply(250, "2.1.5", "ok " .. ctx.rcpt.local_part:rep(2)))
            end),
          },
        }
        """

    static let session = SessionInfo(
        clientIP: "192.0.2.10", clientPort: 40000, clientName: "host.test", serverIP: "192.0.2.1",
        serverName: "mx.example", helo: "host.test", mailFrom: MailAddress("alice@mx.test"),
        rcpts: [MailAddress("bob@host.test")])

    static func engine(_ source: String = Self.policy, limits: RuleLimits = RuleLimits()) throws -> RuleEngine {
        let resolver = ZoneResolver(records: try ZoneFile.parse(Self.zone))
        return try RuleEngine(source: source, path: "policy.lua", resolvers: SingleResolver(resolver), limits: limits)
    }

    /// The verdict of each stage of one transaction.
    static func transaction(_ engine: RuleEngine, stages: [Stage] = [.connect, .helo, .mail, .rcpt]) async -> [String] {
        let transaction = await engine.beginTransaction(Self.session)
        var verdicts: [String] = []
        for stage in stages {
            verdicts.append(await engine.evaluate(stage, in: transaction).verdict.description)
        }
        await engine.endTransaction(transaction)
        return verdicts
    }

    static let localError = "defer 451 4.3.0 Local error in processing, try again later"

    @Test("an allocation failing at each allocation of a whole transaction in turn")
    func allocationFailures() async throws {
        let engine = try Self.engine()
        let baseline = await Self.transaction(engine)
        #expect(baseline == ["next", "next", "next", "accept 250 2.1.5 ok bobbob"])
        let before = await engine.withIsolation { $0.host.lua.scriptAllocations }
        _ = await Self.transaction(engine)
        let perTransaction = await engine.withIsolation { $0.host.lua.scriptAllocations } - before
        #expect(perTransaction > 20)
        var failed = 0
        for k in 1...(perTransaction + 5) {
            await engine.withIsolation { _ = $0.host.lua.failScriptAllocation(after: k) }
            let verdicts = await Self.transaction(engine)
            await engine.withIsolation { _ = $0.host.lua.failScriptAllocation(after: 0) }
            for (verdict, expected) in zip(verdicts, baseline) where verdict != expected {
                #expect(verdict == Self.localError, "allocation \(k): \(verdicts)")
                failed += 1
            }
            let next = await Self.transaction(engine)
            #expect(next == baseline, "after allocation \(k) failed: \(next)")
        }
        print("allocation failures injected: \(perTransaction + 5), stages failed: \(failed)")
        #expect(failed >= perTransaction / 2)
    }

    @Test("error objects of every type, and __tostring that fails, loops, allocates or yields", arguments: [
        ("error()", "nil"),
        ("error(nil)", "nil"),
        ("error(true)", "true"),
        ("error(42)", "42"),
        ("error(4.5)", "4.5"),
        ("error('text', 0)", "text"),
        ("error({})", "error object is a table value"),
        ("error(tostring)", "error object is a function value"),
        ("error(setmetatable({}, { __name = 'Thing' }))", "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() return 42 end }))", "42"),
        ("error(setmetatable({}, { __tostring = function() return {} end }))", "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() error('nested') end }))", "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() while true do end end }))", "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() return ('x'):rep(1 << 30) end }))", "memory limit exceeded"),
        ("error(setmetatable({}, { __tostring = function() local t = {} for i = 1, 1e8 do t[i] = i end end }))",
         "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() return dns.lookup('host.test')[1] end }))",
         "error object is a table value"),
        ("error(setmetatable({}, { __tostring = function() return 'described' end }))", "described"),
        ("error(('x'):rep(1 << 20))", "xxxx"),
    ])
    func errorObjects(raise: String, message: String) async throws {
        try await Self.expectLocalError(from: raise, message: message,
                                        limits: RuleLimits(instructionsPerStage: 1_000_000, memoryBytes: 16 << 20))
    }

    @Test("stack exhaustion: Lua recursion, C recursion, a host call on a full stack, too many values", arguments: [
        ("local function f(n) return 1 + f(n + 1) end f(1)", "stack overflow"),
        ("local f f = function() local ok, e = pcall(f) error(e, 0) end f()", "stack overflow"),
        ("local function f(s) return (s:gsub('.', f)) end f('abc')", "stack overflow"),
        // 190 locals a frame: the stack fills in a few thousand frames, each asking DNS.
        ("local function f(n) local " + (1...190).map { "v\($0)" }.joined(separator: ", ")
            + " = n local found = dns.lookup('host.test') return 1 + f(n + 1) end f(1)", "stack overflow"),
        ("return table.unpack({}, 1, 1e7)", "too many results"),
        ("local t = {} for i = 1, 3000 do t = setmetatable({}, { __index = t }) end return t.x", "'__index' chain too long"),
        ("return select(2, string.byte(('x'):rep(1e7), 1, -1))", "string slice too long"),
    ])
    func stackExhaustion(body: String, message: String) async throws {
        // The DNS calls unbounded too, so that the host call meets a full stack.
        try await Self.expectLocalError(from: body, message: message,
                                        limits: RuleLimits(instructionsPerStage: 50_000_000, dnsCallsPerStage: .max))
    }

    /// A connect rule running `body` ends in 451 4.3.0 with `message` in its failure, and the
    /// transaction's next stage runs normally.
    static func expectLocalError(from body: String, message: String, limits: RuleLimits,
                                 sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let engine = try Self.engine("""
            return {
              connect = { rule("failing", function(ctx) \(body) end) },
              helo = { rule("fine", function(ctx) if dns.iprev(ctx.client.ip).status == "pass" then return accept() end end) },
            }
            """, limits: limits)
        let transaction = await engine.beginTransaction(Self.session)
        let result = await engine.evaluate(.connect, in: transaction)
        #expect(result.verdict.description == Self.localError, sourceLocation: sourceLocation)
        #expect(result.failure?.contains(message) == true, "\(result.failure ?? "no failure")", sourceLocation: sourceLocation)
        #expect(await engine.evaluate(.helo, in: transaction).verdict.kind == .accept, sourceLocation: sourceLocation)
        await engine.endTransaction(transaction)
    }

    @Test("a DNS error's metatable is shared by every transaction and cannot be changed")
    func dnsErrorMetatable() async throws {
        let resolver = ZoneResolver(records: try ZoneFile.parse(Self.zone))
        resolver.setFault(.servfail, for: "host.test")
        let engine = try RuleEngine(source: """
            return { connect = {
              rule("poison", function(ctx)
                local _, e = pcall(dns.lookup, "host.test")
                local changed = pcall(function() getmetatable(e).__tostring = function() return "poisoned" end end)
                local replaced = pcall(setmetatable, e, {})
                if changed or replaced then return defer("451 4.3.0 opened") end
              end),
              rule("uncaught", function(ctx) dns.lookup("host.test") end),
            } }
            """, path: "policy.lua", resolvers: SingleResolver(resolver))
        for _ in 0..<2 {
            let transaction = await engine.beginTransaction(Self.session)
            let result = await engine.evaluate(.connect, in: transaction)
            await engine.endTransaction(transaction)
            #expect(result.verdict.reply == .directoryFailure, "\(result.verdict) \(result.failure ?? "")")
            #expect(result.failure?.contains("DNS servfail for host.test/A") == true, "\(result.failure ?? "")")
        }
    }

    @Test("deep, wide and cyclic data read by the Swift layer is bounded")
    func deepAndCyclicData() throws {
        let lua = LuaState(memoryLimit: 0)
        let source = """
            local cyclic = {} cyclic.self = cyclic cyclic[1] = cyclic
            local deep = {} local t = deep for i = 1, 100000 do t.next = {} t = t.next end
            local fan = {} local level = fan for i = 1, 20 do local n = {} for j = 1, 8 do level[j] = n end level = n end
            return { a = 1, "x" }, cyclic, deep, fan
            """
        guard case .success = lua.load(source: source, chunkName: "=data"),
              case .success = lua.protectedCall(arguments: 0, results: 4) else {
            Issue.record("the data does not load")
            return
        }
        let clock = ContinuousClock()
        var values: [LuaData] = []
        let elapsed = clock.measure { values = (1...4).map { LuaData.read(lua, at: Int32($0)) } }
        #expect(elapsed < .seconds(2), "\(elapsed)")
        #expect(values[0] == .table(array: [.string("x")], fields: ["a": .number(1)]))
        #expect(values[1]["self"] == .other("table seen before (a cycle or a shared table)"))
        #expect("\(values[2])".contains("nested too deeply"))
        #expect("\(values[3])".contains("too much data"))
        #expect(lua.top() == 4)
    }
}
