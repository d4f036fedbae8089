import Foundation
import Policy
import Testing
import VrulesTestSupport

/// What a hostile rule script can try, through the surfaces an operator uses: `vrules run`
/// and `vrules serve`. Each attempt either fails inside the script or ends its stage in
/// 451 4.3.0, quickly, and changes nothing for the next transaction.
@Suite("Sandbox through vrules run and serve", .serialized)
struct SandboxTests {
    /// Tries every way to the table behind a read-only object; each attempt is caught.
    static let poisoning = """
        local attempts = {
          function() local _, d = pairs(replies.access_denied); d.text = "x\\n\\naction=OK\\n" end,
          function() local _, d = pairs(dns); d.iprev = function() return { status = "pass" } end end,
          function() local _, d = pairs(string); d.lower = function() return "pwned" end end,
          function() local f, s = pairs(dns); local _, v = f(s, nil); rawset(s, "iprev", v) end,
          function() for _, v in pairs(replies) do local _, d = pairs(v); d.text = "x" end end,
          function() local _, d = next(replies); d.text = "x" end,
          function() rawset(replies.access_denied, "text", "x") end,
          function() rawset(dns, "iprev", print) end,
          function() getmetatable(replies.access_denied).__index.text = "x" end,
          function() getmetatable(dns).__index.iprev = nil end,
          function() setmetatable(dns, nil) end,
          function() ctx.client.ip = "192.0.2.10" end,
          function() for _, t in ipairs({ dns, string, table, math, log, replies }) do t.x = 1 end end,
          function() local _, e = pcall(dns.query, "nxdomain.invalid", "NOPE"); getmetatable(e).__index = {} end,
        }
        local opened = 0
        for i, attempt in ipairs(attempts) do
          if pcall(attempt) then opened = opened + 1; log.warn("attempt", i, "succeeded") end
        end
        ctx.vars.opened = opened
        """

    static let victim = """
        helo = {
          rule("still intact", function(ctx)
            if replies.access_denied.text ~= "Access denied" then return defer("451 4.3.0 reply poisoned") end
            if ("ABC"):lower() ~= "abc" then return defer("451 4.3.0 string poisoned") end
            if dns.iprev(ctx.client.ip).status ~= "pass" then return reject(replies.access_denied) end
          end),
        },
        """

    /// `vrules run` on the example zone with `rules` as the script; the output and the seconds it took.
    static func simulate(_ rules: String, clientIP: String = "192.0.2.10") throws -> (CLI.Output, Double) {
        let directory = try CLI.scratch(["rules.lua": rules])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let started = Date()
        let output = try CLI.run(["run", "--zone", zone, "--rules", "rules.lua", "--client-ip", clientIP,
                                  "--helo", "mail.good.example", "--mail-from", "a@good.example"], in: directory)
        return (output, Date().timeIntervalSince(started))
    }

    @Test("read-only objects give nothing away: a poisoning rule changes nothing, in its own transaction or the next")
    func readonlyObjects() throws {
        // 192.0.2.66 fails iprev: an opened dns.iprev would let it pass.
        let (output, _) = try Self.simulate("""
            return {
              connect = { rule("poison", function(ctx)
                \(Self.poisoning)
                if ctx.vars.opened > 0 then return defer("451 4.3.0 opened") end
              end) },
              \(Self.victim)
            }
            """, clientIP: "192.0.2.66")
        #expect(output.stdout.contains("connect: next"), "\(output.stdout)")
        #expect(output.stdout.contains("helo: reject 550 5.7.1 Access denied"), "\(output.stdout)")
        #expect(!output.stdout.contains("succeeded"), "\(output.stdout)")
    }

    @Test("a library call cannot run unbounded: each ends in 451 4.3.0 well under a second", arguments: [
        #"return ("a"):rep(40):find(("a*"):rep(40) .. "b")"#,
        #"return ("a"):rep(30):match(("a-"):rep(30) .. "$b")"#,
        #"for w in ("a"):rep(5000):gmatch("a-a-a-a-b") do end"#,
        #"return ("a"):rep(2000):gsub("(a*)*b", "x")"#,
        #"return ("x"):rep(100000):find(("x"):rep(50000) .. "y", 1, true)"#,
        #"local s = "" for i = 1, 1e7 do s = s .. "abcdefgh" end"#,
        #"local t = {} for i = 1, 200 do t[i] = ("x"):rep(1 << 16) end for i = 1, 1e6 do local _ = table.concat(t) end"#,
        #"for i = 1, 1e6 do local _ = string.format("%s%s", ("y"):rep(1 << 20), "z") end"#,
        #"table.move({}, 1, math.maxinteger - 1, 1)"#,
        #"local t = setmetatable({}, { __len = function() return math.maxinteger // 2 end }) table.insert(t, 1, 0)"#,
        #"local t = setmetatable({}, { __len = function() return math.maxinteger // 2 end }) table.remove(t, 1)"#,
        #"for i = 1, 1e6 do local f = load(("x = 1 "):rep(1e5)) end"#,
    ])
    func unboundedCalls(body: String) throws {
        let (output, elapsed) = try Self.simulate("""
            return { connect = { rule("hang", function(ctx) \(body) end) } }
            """)
        #expect(output.stdout.contains("connect: defer 451 4.3.0"), "\(output.stdout)\(output.stderr)")
        #expect(output.stdout.contains("instruction budget exceeded") || output.stdout.contains("run time exceeded"),
                "\(output.stdout)")
        #expect(elapsed < 1.5, "took \(elapsed) s")
    }

    @Test("work that costs nothing finishes at once however large its count", arguments: [
        #"local s = string.rep("", math.maxinteger) if s ~= "" then error("wrong") end"#,
        #"local s = string.rep("", math.maxinteger, "") if s ~= "" then error("wrong") end"#,
        #"local n = select(2, ("abc"):gsub("", "", math.maxinteger)) if n ~= 4 then error(n) end"#,
    ])
    func emptyWork(body: String) throws {
        let (output, elapsed) = try Self.simulate("""
            return { connect = { rule("cheap", function(ctx) \(body) return accept() end) } }
            """)
        #expect(output.stdout.contains("connect: accept"), "\(output.stdout)\(output.stderr)")
        #expect(elapsed < 1.5)
    }

    @Test("vrules serve: a smuggling transaction, then a normal one on the same connection, each get their own answer")
    func serveSmuggling() throws {
        let directory = try CLI.scratch(["rules.lua": """
            return {
              connect = { rule("poison", function(ctx)
                \(Self.poisoning)
                if ctx.client.ip == "192.0.2.99" then return reject(replies.access_denied) end
              end) },
              \(Self.victim)
            }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let server = try ServeProcess(arguments: ["--rules", "rules.lua", "--zone", zone], directory: directory)
        defer { _ = server.stop() }
        let client = try PolicyClient(port: server.port)
        func request(_ state: String, client ip: String, instance: String) -> [String: String] {
            ["request": "smtpd_access_policy", "protocol_state": state, "client_address": ip, "client_port": "4000",
             "helo_name": "mail.good.example", "sender": "a@good.example", "instance": instance]
        }
        // The smuggler: its reject text must come out as validated, not as "action=OK".
        let first = try client.ask(request("CONNECT", client: "192.0.2.99", instance: "a"))
        #expect(first == "550 5.7.1 Access denied", "\(first ?? "no answer")")
        // Then a client whose reverse DNS fails, on the same connection: still rejected.
        _ = try client.ask(request("CONNECT", client: "192.0.2.66", instance: "b"))
        let second = try client.ask(request("HELO", client: "192.0.2.66", instance: "b"))
        #expect(second == "550 5.7.1 Access denied", "\(second ?? "no answer")")
        #expect(!server.log.contains("succeeded"), "\(server.log)")
    }

    @Test("vrules serve: a hanging rule ends in 451 4.3.0 within a second while other clients are answered")
    func serveHangingRule() throws {
        let directory = try CLI.scratch(["rules.lua": """
            return { connect = { rule("maybe hang", function(ctx)
              if ctx.client.ip == "192.0.2.66" then return ("a"):rep(40):find(("a*"):rep(40) .. "b") end
              return accept()
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let server = try ServeProcess(arguments: ["--rules", "rules.lua", "--zone", zone], directory: directory)
        defer { _ = server.stop() }
        let hostile = try PolicyClient(port: server.port)
        let other = try PolicyClient(port: server.port)
        func connect(_ ip: String, _ instance: String) -> [String: String] {
            ["request": "smtpd_access_policy", "protocol_state": "CONNECT", "client_address": ip, "client_port": "4000",
             "instance": instance]
        }
        for round in 0..<3 {
            let started = Date()
            let answer = try hostile.ask(connect("192.0.2.66", "h\(round)"))
            #expect(Date().timeIntervalSince(started) < 1, "round \(round)")
            #expect(answer?.hasPrefix("451 4.3.0") == true, "\(answer ?? "no answer")")
            let good = try other.ask(connect("192.0.2.10", "g\(round)"))
            #expect(good == "DUNNO", "\(good ?? "no answer")")
        }
    }
}
