import VrulesTestSupport
import DNS
import Foundation
import ListenAddress
import NIOCore
import NIOEmbedded
@testable import Policy
import Rules
import Testing

func ask(_ client: PolicyClient, _ attributes: [String: String]) async throws -> String? {
    try await blocking { try client.ask(attributes) }
}

func answer(_ client: PolicyClient) async throws -> String? {
    try await blocking { try client.readAnswer() }
}

/// What a hostile client, an unusual Postfix setup or a proxy in front of Postfix can
/// send, through the policy protocol: each test failed before the mechanism it names.
@Suite("Policy server against hostile and unusual clients")
struct HostileClientTests {
    @Test("one client address and port talking to two server addresses: two sessions, both answered right")
    func collidingSessions() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        let a = ["server_address": "192.0.2.1", "server_port": "25"]
        let b = ["server_address": "192.0.2.2", "server_port": "25"]
        #expect(try await ask(client, request("RCPT", instance: "a1", recipient: "u@x.test", extra: a)) == "DUNNO")
        #expect(try await ask(client, request("RCPT", instance: "b1", recipient: "count@x.test", extra: b))
            == "550 5.1.1 connects=1 rcpts=1 sender=a@good.test")
        #expect(try await ask(client, request("RCPT", instance: "a1", recipient: "count@x.test", extra: a))
            == "550 5.1.1 connects=1 rcpts=2 sender=a@good.test")
        #expect(try await ask(client, request("DATA", instance: "a1", extra: a)) == "554 5.7.1 rcpts=2")
        #expect(try await ask(client, request("DATA", instance: "b1", extra: b)) == "554 5.7.1 rcpts=1")
        #expect(await harness.server.service.transactionCount == 2)
        await harness.stop()
    }

    @Test("XCLIENT runs the connect rules for the client the proxy hands over, and answers with their verdict")
    func xclient() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        // The proxy itself passes; the client it hands over has no PTR record.
        #expect(try await ask(client, request("CONNECT", instance: "", helo: nil, sender: nil)) == "DUNNO")
        #expect(try await ask(client, request("XCLIENT", client: "192.0.2.99", instance: "", helo: nil, sender: nil))
            == "550 5.7.25 Reverse DNS validation failed")
        await harness.stop()
    }

    @Test("XCLIENT starts a fresh transaction: the connect rules run again even for the same address and port")
    func xclientIsFresh() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("CONNECT", instance: "", helo: nil, sender: nil)) } == "DUNNO")
        // Reused, the CONNECT verdict would answer DUNNO; run again, the rules see the outage.
        harness.resolver.setFault(.servfail, for: "10.2.0.192.in-addr.arpa")
        #expect(try await blocking { try client.ask(request("XCLIENT", instance: "", helo: nil, sender: nil)) }
            == "451 4.4.3 Directory server failure, try again later")
        await harness.stop()
    }

    @Test("BDAT (CHUNKING) is the data stage")
    func bdat() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await ask(client, request("RCPT", instance: "c1", recipient: "u@x.test")) == "DUNNO")
        #expect(try await ask(client, request("BDAT", instance: "c1")) == "554 5.7.1 rcpts=1")
        await harness.stop()
    }

    @Test("VRFY and ETRN answer with the client's connect and HELO verdicts")
    func vrfyAndEtrn() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await ask(client, request("VRFY", client: "192.0.2.99", instance: "")) == "550 5.7.25 Reverse DNS validation failed")
        #expect(try await ask(client, request("ETRN", instance: "", helo: "bad.test", extra: ["client_port": "40001"])) == "550 5.7.1 Bad HELO")
        #expect(try await ask(client, request("ETRN", instance: "", extra: ["client_port": "40002"])) == "DUNNO")
        await harness.stop()
    }

    @Test("an unknown protocol_state gets the configured action, a temporary failure by default",
          arguments: [(nil, "451 4.3.0 Unknown policy protocol state, try again later"), ("DUNNO", "DUNNO"),
                      ("550 5.7.0 Not here", "550 5.7.0 Not here")] as [(String?, String)])
    func unknownState(configured: String?, expected: String) async throws {
        var configuration = PolicyService.Configuration()
        if let configured { configuration.unknownStateAction = configured }
        let harness = try await PolicyHarness.start(configuration: configuration)
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("SOMETHING-NEW", instance: "")) } == expected)
        #expect(try await blocking { try client.ask(request("", instance: "")) } == expected)
        await harness.stop()
    }

    @Test("a request without client_address is garbled: closed without an answer, not judged as 0.0.0.0")
    func missingClientAddress() async throws {
        let harness = try await PolicyHarness.start()
        let bad = try harness.client()
        var withoutAddress = request("RCPT", recipient: "u@x.test")
        withoutAddress["client_address"] = nil
        let attributes = withoutAddress
        #expect(try await blocking { try bad.ask(attributes) } == nil)
        let good = try harness.client()
        #expect(try await blocking { try good.ask(request("RCPT", recipient: "later@x.test")) } == "450 4.2.1 Mailbox busy")
        await harness.stop()
    }

    @Test("a flood of held transactions with 3,000-character addresses leaves other clients answered normally")
    func longAddressFlood() async throws {
        let harness = try await PolicyHarness.start()
        let flooder = try harness.client()
        let local = String(repeating: "a", count: 3_000)
        let refused = try await blocking { () throws -> Int in
            var refused = 0
            var batch: [UInt8] = []
            for index in 0..<6_000 {
                batch += PolicyClient.encode(request("RCPT", instance: "f\(index)", recipient: "\(local)\(index)@x.test",
                                                     extra: ["client_port": "\(index)"]))
                if index % 50 == 49 {
                    try flooder.send(batch)
                    batch = []
                    for _ in 0..<50 where try flooder.readAnswer() != "DUNNO" { refused += 1 }
                }
            }
            return refused
        }
        #expect(refused == 0, "the flooder's own requests are answered too")
        let service = harness.server.service
        #expect(await service.transactionBytes <= PolicyService.Configuration().transactionMemory)
        let other = try harness.client()
        #expect(try await ask(other, request("RCPT", instance: "o1", recipient: "u@x.test", extra: ["client_port": "9"])) == "DUNNO")
        #expect(try await ask(other, request("RCPT", instance: "o1", recipient: "count@x.test", extra: ["client_port": "9"]))
            == "550 5.1.1 connects=1 rcpts=2 sender=a@good.test")
        await harness.stop()
    }

    @Test("one transaction with thousands of recipients: past the limit 452 4.5.3, and other clients answered normally",
          arguments: [1, 3_000])
    func manyRecipients(localPartLength: Int) async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        let local = String(repeating: "r", count: localPartLength)
        let (accepted, limited) = try await blocking { () throws -> (Int, Int) in
            var accepted = 0
            var limited = 0
            for index in 0..<2_000 {
                let answer = try client.ask(request("RCPT", instance: "many", recipient: "\(local)\(index)@x.test"))
                if answer == "DUNNO" { accepted += 1 } else if answer == "452 4.5.3 Too many recipients" { limited += 1 }
            }
            return (accepted, limited)
        }
        #expect(accepted + limited == 2_000)
        if localPartLength == 1 {
            #expect(accepted == 1_000, "Postfix's smtpd_recipient_limit default")
        } else {
            #expect(accepted > 10 && accepted < 1_000, "bounded by the transaction's share of memory: \(accepted)")
        }
        // A recipient already in the transaction is still answered by the rules.
        #expect(try await blocking { try client.ask(request("RCPT", instance: "many", recipient: "\(local)0@x.test")) } == "DUNNO")
        let other = try harness.client()
        #expect(try await blocking { () throws in
            try other.ask(request("RCPT", instance: "o2", recipient: "count@x.test", extra: ["client_port": "7"]))
        } == "550 5.1.1 connects=1 rcpts=1 sender=a@good.test")
        await harness.stop()
    }

    @Test("a reload that changes the engines' memory cap moves the held transactions' bound with it")
    func transactionBoundFollowsReload() async throws {
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        func engine(memory: Int, executor: (any SerialExecutor)? = nil) throws -> RuleEngine {
            try RuleEngine(source: policyRules, path: "policy.lua", resolvers: SingleResolver(resolver),
                           limits: RuleLimits(memoryBytes: memory), tracing: false, executor: executor)
        }
        let first = try engine(memory: 4 << 20)
        // A reloaded engine runs on the executor of the one it replaces, as in vrules serve.
        func engines(memory: Int) throws -> [RuleEngine] { [try engine(memory: memory, executor: first.executor)] }
        // As vrules serve sizes it: a quarter of the cap for held transactions.
        let service = PolicyService(engines: [first],
                                    configuration: PolicyService.Configuration(transactionMemory: 1 << 20), logger: .policyTests)
        let server = PolicyServer(service: service, listen: [.tcp(host: "127.0.0.1", port: 0)], logger: .policyTests)
        let port = try await server.start()[0].port!
        let client = try PolicyClient(port: port)
        client.setTimeout(seconds: 10)
        let local = String(repeating: "r", count: 3_000)
        func accepted(_ instance: String) async throws -> Int {
            var count = 0
            for index in 0..<200 {
                let answer = try await ask(client, request("RCPT", instance: instance, recipient: "\(local)\(index)@x.test",
                                                           extra: ["client_port": "\(instance.count)"]))
                if answer == "452 4.5.3 Too many recipients" { break }
                count += 1
            }
            return count
        }
        let before = try await accepted("small")
        await service.replaceEngines(try engines(memory: 16 << 20))
        let after = try await accepted("large-cap")
        #expect(before > 2 && before < 50, "\(before)")
        #expect(after >= 3 * before, "with four times the cap: \(before) then \(after)")
        await service.replaceEngines(try engines(memory: 4 << 20))
        #expect(try await accepted("small-again") == before)
        await server.stop()
    }

    /// A policy server on a loopback port running `rules` on the policy zone, and a client of it.
    static func serving(_ rules: String) async throws -> (PolicyServer, PolicyClient) {
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engine = try RuleEngine(source: rules, path: "policy.lua", resolvers: SingleResolver(resolver), tracing: false)
        let server = PolicyServer(service: PolicyService(engine: engine, logger: .policyTests),
                                  listen: [.tcp(host: "127.0.0.1", port: 0)], logger: .policyTests)
        let port = try await server.start()[0].port!
        let client = try PolicyClient(port: port)
        client.setTimeout(seconds: 10)
        return (server, client)
    }

    /// ctx.rcpts is "the recipients accepted so far, and the current one": a recipient the
    /// rules refused stayed in it, for the next RCPT and at DATA, where `vrules run` and
    /// `vrules test` had dropped it.
    @Test("a recipient the rules refuse leaves ctx.rcpts, as vrules run plays it; asked again, it is refused again")
    func refusedRecipientsLeave() async throws {
        let rules = """
        local function names(ctx) local t = {} for _, r in ipairs(ctx.rcpts) do t[#t + 1] = r.local_part end return table.concat(t, ",") end
        return {
          rcpt = { rule("refuse", function(ctx)
            if ctx.rcpt.local_part == "bad" then return reject(reply(550, "5.1.1", "no")) end
            if ctx.rcpt.local_part == "probe" then return reject(reply(550, "5.7.1", names(ctx))) end
          end) },
          data = { rule("list", function(ctx) return defer(reply(451, "4.7.1", names(ctx))) end) },
        }
        """
        let (server, client) = try await Self.serving(rules)
        var answers: [String?] = []
        for recipient in ["good1", "bad", "good2", "probe", "bad", "good2"] {
            answers.append(try await ask(client, request("RCPT", instance: "r1", recipient: "\(recipient)@x.test")))
        }
        answers.append(try await ask(client, request("DATA", instance: "r1", recipient: "good1@x.test")))
        #expect(answers == ["DUNNO", "550 5.1.1 no", "DUNNO", "550 5.7.1 good1,good2,probe", "550 5.1.1 no", "DUNNO",
                            "451 4.7.1 good1,good2"])
        await server.stop()
    }

    /// Postfix often asks first at RCPT, with every field known, and the earlier stages run
    /// then: they saw the recipient, and the stage result kept for the transaction hung on
    /// the recipient asked first.
    @Test("stages run on a later request see only what the dialogue had told by then")
    func earlierStagesSeeTheirOwnFields() async throws {
        let rules = """
        local function seen(ctx) return tostring(ctx.helo) .. " " .. tostring(ctx.mail_from and ctx.mail_from.address) .. " " .. tostring(ctx.rcpt and ctx.rcpt.address) end
        return {
          connect = { rule("c", function(ctx) if seen(ctx) ~= "nil nil nil" then return reject(reply(550, "5.7.1", "connect " .. seen(ctx))) end end) },
          helo = { rule("h", function(ctx) if seen(ctx) ~= "good.test nil nil" then return reject(reply(550, "5.7.1", "helo " .. seen(ctx))) end end) },
          mail = { rule("m", function(ctx) if seen(ctx) ~= "good.test a@good.test nil" then return reject(reply(550, "5.7.1", "mail " .. seen(ctx))) end end) },
          rcpt = { rule("r", function(ctx) return reject(reply(550, "5.7.1", "rcpt " .. seen(ctx))) end) },
        }
        """
        let (server, client) = try await Self.serving(rules)
        #expect(try await ask(client, request("RCPT", instance: "s1", recipient: "first@x.test")) == "550 5.7.1 rcpt good.test a@good.test first@x.test")
        await server.stop()
    }

    @Test("rules that fill the Lua state through ctx.vars: idle transactions are evicted before a request fails")
    func luaMemoryFullOfVars() async throws {
        let rules = """
        return { rcpt = { rule("stash", function(ctx) ctx.vars.blob = string.rep(ctx.rcpt.local_part, 200000) end) } }
        """
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engine = try RuleEngine(source: rules, path: "policy.lua", resolvers: SingleResolver(resolver),
                                    limits: RuleLimits(memoryBytes: 16 << 20), tracing: false)
        let server = PolicyServer(service: PolicyService(engine: engine, logger: .policyTests), listen: [.tcp(host: "127.0.0.1", port: 0)], logger: .policyTests)
        let port = try await server.start()[0].port!
        let client = try PolicyClient(port: port)
        client.setTimeout(seconds: 10)
        // Each transaction holds 1.2 MB of ctx.vars: 40 of them would need 48 MB of a 16 MiB state.
        var answers: [String?] = []
        for index in 0..<40 {
            answers.append(try await ask(client, request("RCPT", instance: "v\(index)", recipient: "abcdef@x.test",
                                                         extra: ["client_port": "\(index)"])))
        }
        #expect(answers == Array(repeating: "DUNNO", count: 40))
        await server.stop()
    }

    @Test("a UNIX socket gets its mode and group before it appears under its name")
    func unixSocketAccess() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-sock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("policy.sock").path
        // A socket file left by an earlier run is replaced.
        try leaveStaleSocket(at: path)
        let group = try #require(SocketGroup.id(named: "postfix") ?? SocketGroup.id(named: "daemon"))
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engine = try RuleEngine(source: policyRules, path: "policy.lua", resolvers: SingleResolver(resolver))
        let server = PolicyServer(service: PolicyService(engine: engine), listen: [.unix(path: path)],
                                  socketAccess: UnixSocketAccess(mode: 0o660, groupID: group))
        try await server.start()
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_gid == group)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["policy.sock"], "no temporary name left")
        let client = try PolicyClient(unixPath: path)
        #expect(try await ask(client, request("RCPT", recipient: "later@x.test")) == "450 4.2.1 Mailbox busy")
        await server.stop()
        #expect(UnixSocketAccess.parseMode("0660") == 0o660)
        for bad in ["", "0999", "12345", "abc", "1777"] { #expect(UnixSocketAccess.parseMode(bad) == nil, "\(bad)") }
    }

    @Test("an engine per core: a slow stage delays only the connections pinned to its engine")
    func enginePerCore() async throws {
        let rules = """
        return {
          helo = { rule("spin", function(ctx)
            if ctx.helo == "spin.test" then local x = 0 for i = 1, 500000000 do x = x + i end end
          end) },
          rcpt = { rule("count", function(ctx)
            ctx.vars.rcpts = (ctx.vars.rcpts or 0) + 1
            if ctx.rcpt.local_part == "count" then return reject(reply(550, "5.1.1", "rcpts=" .. ctx.vars.rcpts)) end
          end) },
        }
        """
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let limits = RuleLimits(instructionsPerStage: 8_000_000_000, runSecondsPerStage: 120)
        let engines = try (0..<2).map { _ in
            try RuleEngine(source: rules, path: "policy.lua", resolvers: SingleResolver(resolver), limits: limits, tracing: false)
        }
        let service = PolicyService(engines: engines, logger: .policyTests)
        let server = PolicyServer(service: service, listen: [.tcp(host: "127.0.0.1", port: 0)], logger: .policyTests)
        let port = try await server.start()[0].port!
        func attributes(_ clientPort: Int, helo: String = "good.test", recipient: String = "u@x.test") -> [String: String] {
            request("RCPT", instance: "e\(clientPort)", helo: helo, recipient: recipient, extra: ["client_port": "\(clientPort)"])
        }
        func engine(_ clientPort: Int) -> Int { service.hashedShard(for: ConnectionKey(PolicyRequest(attributes: attributes(clientPort)))) }
        let slowPort = 1
        let fastPort = try #require((2..<100).first { engine($0) != engine(slowPort) })
        let slow = try PolicyClient(port: port)
        let fast = try PolicyClient(port: port)
        slow.setTimeout(seconds: 60)
        fast.setTimeout(seconds: 60)
        final class Order: @unchecked Sendable {
            let lock = NSLock()
            var names: [String] = []
            func add(_ name: String) { self.lock.lock(); self.names.append(name); self.lock.unlock() }
        }
        let order = Order()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { () async throws in
                let answer = try await ask(slow, attributes(slowPort, helo: "spin.test"))
                order.add("slow")
                #expect(answer == "DUNNO")
            }
            try await Task.sleep(for: .milliseconds(50))
            group.addTask { () async throws in
                let answer = try await ask(fast, attributes(fastPort, recipient: "count@x.test"))
                order.add("fast")
                #expect(answer == "550 5.1.1 rcpts=1")
            }
            try await group.waitForAll()
        }
        #expect(order.names == ["fast", "slow"], "the fast connection's engine was free while the other spun")
        // Transactions stay on their engine across requests.
        #expect(try await ask(slow, attributes(slowPort, recipient: "count@x.test")) == "550 5.1.1 rcpts=2")
        #expect(await service.transactionCount == 2)
        await server.stop()
    }

    @Test("idle transactions expire on a timer, with no further requests")
    func expiryOnTimer() async throws {
        let harness = try await PolicyHarness.start(configuration: PolicyService.Configuration(transactionTimeout: 1))
        let client = try harness.client()
        try await blocking { () throws in
            for index in 0..<20 {
                _ = try client.ask(request("RCPT", instance: "t\(index)", recipient: "u@x.test", extra: ["client_port": "\(index)"]))
            }
        }
        // Some may have expired already on a loaded machine; none is asked about again.
        #expect(await harness.server.service.transactionCount > 0)
        let deadline = ContinuousClock.now + .seconds(10)
        while await harness.server.service.transactionCount > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await harness.server.service.transactionCount == 0)
        await harness.stop()
    }

    @Test("first requests of one instance arriving together make one transaction")
    func creationRace() async throws {
        // A stage that keeps the engine busy, so that the first requests all wait for it
        // to begin their transaction: checked, awaited, then inserted, each would make its own.
        let rules = """
        return {
          helo = { rule("spin", function(ctx)
            if ctx.helo == "spin.test" then local x = 0 for i = 1, 1500000 do x = x + i end end
          end) },
          rcpt = { rule("count", function(ctx)
            ctx.vars.rcpts = (ctx.vars.rcpts or 0) + 1
            if ctx.rcpt.local_part == "count" then return reject(reply(550, "5.1.1", "rcpts=" .. ctx.vars.rcpts)) end
          end) },
        }
        """
        let harness = try await PolicyHarness.start(rules: rules)
        let spinner = try harness.client()
        let racers = try (0..<4).map { _ in try harness.client() }
        try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { try await ask(spinner, request("RCPT", instance: "spin", helo: "spin.test", recipient: "s@x.test",
                                                             extra: ["client_port": "1"])) }
            try await Task.sleep(for: .milliseconds(10))
            for (index, racer) in racers.enumerated() {
                group.addTask { try await ask(racer, request("RCPT", instance: "race", recipient: "r\(index)@x.test")) }
            }
            for try await answer in group { #expect(answer == "DUNNO") }
        }
        #expect(try await ask(racers[0], request("RCPT", instance: "race", recipient: "count@x.test")) == "550 5.1.1 rcpts=5")
        #expect(await harness.server.service.transactionCount == 2)
        await harness.stop()
    }

    @Test("a complete request followed at once by a half-close gets its answer")
    func halfClose() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        try await blocking {
            try client.send(PolicyClient.encode(request("RCPT", recipient: "later@x.test")) + PolicyClient.encode(request("RCPT", recipient: "u@x.test")))
            client.shutdownWrite()
        }
        #expect(try await answer(client) == "450 4.2.1 Mailbox busy")
        #expect(try await answer(client) == "DUNNO")
        #expect(try await answer(client) == nil)
        await harness.stop()
    }

    @Test("a request that grows past 64 KiB without ending is closed, not buffered; others are answered")
    func endlessRequest() async throws {
        let harness = try await PolicyHarness.start()
        let hostile = try harness.client()
        // Within the line and attribute limits (16 KiB, 128): 2 MiB a connection without the
        // bound on the whole request.
        let line = Array(("x_filler=" + String(repeating: "y", count: 16_000) + "\n").utf8)
        // The server may close before all of it is sent: the send then fails.
        _ = try? await blocking {
            try hostile.send(Array("request=smtpd_access_policy\n".utf8))
            for _ in 0..<127 { try hostile.send(line) }
        }
        // Closed: the end of the stream, or a reset for the bytes it left unread; not a timeout.
        hostile.setTimeout(seconds: 5)
        let closed: Bool
        do { closed = try await answer(hostile) == nil } catch { closed = "\(error)".hasSuffix("errno \(ECONNRESET)") }
        #expect(closed, "closed without an answer")
        let good = try harness.client()
        #expect(try await ask(good, request("RCPT", recipient: "later@x.test")) == "450 4.2.1 Mailbox busy")
        await harness.stop()
    }

    @Test("a valid request followed by a malformed one gets its answer before the close")
    func validThenMalformed() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        try await blocking {
            try client.send(PolicyClient.encode(request("RCPT", recipient: "later@x.test")) + Array("garbage without equals\n\n".utf8))
        }
        #expect(try await answer(client) == "450 4.2.1 Mailbox busy")
        #expect(try await answer(client) == nil)
        await harness.stop()
    }

    @Test("pipelined requests are answered in order")
    func pipelined() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        let answers = try await blocking { () throws -> [String?] in
            var bytes: [UInt8] = []
            for index in 0..<200 {
                bytes += PolicyClient.encode(request("RCPT", instance: "p", recipient: index % 2 == 0 ? "later@x.test" : "u\(index)@x.test"))
            }
            try client.send(bytes)
            return try (0..<200).map { _ in try client.readAnswer() }
        }
        #expect(answers == (0..<200).map { $0 % 2 == 0 ? "450 4.2.1 Mailbox busy" : "DUNNO" })
        await harness.stop()
    }

    @Test("thousands of pipelined repeats, answered at once from the held verdicts, come back whole and in order")
    func pipelinedRepeats() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        let count = 5_000
        let answers = try await blocking { () throws -> [String?] in
            var bytes: [UInt8] = []
            // The first of each recipient runs the rules; every repeat after it is settled.
            for index in 0..<count {
                bytes += PolicyClient.encode(request("RCPT", instance: "r", recipient: index % 3 == 2 ? "later@x.test" : "u@x.test"))
            }
            try client.send(bytes)
            return try (0..<count).map { _ in try client.readAnswer() }
        }
        #expect(answers == (0..<count).map { $0 % 3 == 2 ? "450 4.2.1 Mailbox busy" : "DUNNO" })
        #expect(try await ask(client, request("RCPT", instance: "r2", recipient: "u@x.test")) == "DUNNO")
        await harness.stop()
    }

    @Test("reply text reaches Postfix as one bounded line of printable ASCII")
    func replySanitised() async throws {
        let rules = """
        return { rcpt = { rule("noisy", function(ctx)
          return reject(reply(550, "5.7.1", "bell\\7 esc\\27 del\\127 tab\\t é " .. string.rep("x", 100000)))
        end) } }
        """
        let harness = try await PolicyHarness.start(rules: rules)
        let client = try harness.client()
        let answer = try #require(try await blocking { try client.ask(request("RCPT", recipient: "u@x.test")) })
        #expect(answer.hasPrefix("5") || answer.hasPrefix("4"), "\(answer.prefix(80))")
        #expect(answer.utf8.count <= PolicyReplyText.maximumLength)
        #expect(answer.unicodeScalars.allSatisfy { (0x20..<0x7F).contains($0.value) }, "\(answer.prefix(80))")
        // The connection is still in step: the next answer is the next request's.
        #expect(try await blocking { try client.ask(request("RCPT", recipient: "u@x.test")) } == answer)
        await harness.stop()
    }

    @Test("near the connection cap a new connection closes the one answered the longest ago")
    func idlestEvicted() async throws {
        // max_connections 3: two kept, the third place for a newcomer while one is evicted.
        let harness = try await PolicyHarness.start(limits: PolicyProtocolLimits(maximumConnections: 3))
        let first = try harness.client()
        let second = try harness.client()
        #expect(try await blocking { try first.ask(request("RCPT", recipient: "u@x.test")) } == "DUNNO")
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await blocking { try second.ask(request("RCPT", recipient: "u@x.test")) } == "DUNNO")
        // Without eviction the first would hold its place until its idle timeout (10 minutes).
        let third = try harness.client()
        third.setTimeout(seconds: 10)
        #expect(try await blocking { try third.ask(request("RCPT", recipient: "later@x.test")) } == "450 4.2.1 Mailbox busy")
        first.setTimeout(seconds: 2)
        let again = try? await blocking { try first.ask(request("RCPT", recipient: "again@x.test")) }
        #expect(again == nil, "the connection idle the longest is still served: \(again ?? "")")
        #expect(try await blocking { try second.ask(request("RCPT", recipient: "v@x.test")) } == "DUNNO")
        await harness.stop()
    }

    @Test("with max_connections 1 a second connection waits, and is served when the first closes")
    func connectionCap() async throws {
        let harness = try await PolicyHarness.start(limits: PolicyProtocolLimits(maximumConnections: 1))
        let first = try harness.client()
        #expect(try await blocking { try first.ask(request("RCPT", recipient: "u@x.test")) } == "DUNNO")
        let second = try harness.client()
        second.setTimeout(seconds: 1)
        let waited = await #expect(throws: (any Error).self) {
            try await blocking { try second.ask(request("RCPT", recipient: "later@x.test")) }
        }
        #expect(waited != nil, "no answer while the first connection is open")
        first.close()
        second.setTimeout(seconds: 10)
        #expect(try await blocking { try second.readAnswer() } == "450 4.2.1 Mailbox busy")
        await harness.stop()
    }

    @Test("with max_connections 1 two connections waiting are served one after the other, neither closed")
    func twoWaiting() async throws {
        let harness = try await PolicyHarness.start(limits: PolicyProtocolLimits(maximumConnections: 1))
        for round in 0..<5 {
            let holder = try harness.client()
            #expect(try await blocking { try holder.ask(request("RCPT", recipient: "holder@x.test")) } == "DUNNO")
            let waiting = try [harness.client(), harness.client()]
            for client in waiting {
                client.setTimeout(seconds: 1)
                try client.send(PolicyClient.encode(request("RCPT", recipient: "w\(round)@x.test")))
            }
            try await Task.sleep(for: .milliseconds(5))
            // Both wait in the backlog; one read must not take them both past the cap.
            holder.close()
            var answers: [String?] = []
            for client in waiting {
                answers.append(try await blocking { (try? client.readAnswer()) ?? nil })
            }
            #expect(answers.compactMap { $0 }.count == 1, "round \(round): \(answers)")
            guard let served = answers.firstIndex(where: { $0 != nil }) else { break }
            waiting[served].close()
            let other = waiting[1 - served]
            other.setTimeout(seconds: 10)
            #expect(try await blocking { try other.readAnswer() } == "DUNNO", "round \(round): the other was closed")
            other.close()
        }
        await harness.stop()
    }

    @Test("with max_connections 1 a connection closed at once never costs the next one its place")
    func closedAtOnce() async throws {
        // A readiness probe, then the real client, both waiting in the backlog behind a
        // connection at the cap: one read accepts both when it closes.
        let harness = try await PolicyHarness.start(limits: PolicyProtocolLimits(maximumConnections: 1))
        let first = try harness.client()
        #expect(try await blocking { try first.ask(request("RCPT", recipient: "holder@x.test")) } == "DUNNO")
        var holder = first
        for round in 0..<100 {
            try harness.client().close()
            let next = try harness.client()
            try await Task.sleep(for: .milliseconds(2))
            holder.close()
            let answer = try? await blocking { try next.ask(request("RCPT", recipient: "u\(round)@x.test")) }
            #expect(answer == "DUNNO", "round \(round): the connection after a closed one was not served")
            if answer == nil { break }
            holder = next
        }
        holder.close()
        await harness.stop()
    }
}

@Suite("One request in flight per connection")
struct ReadBackpressureTests {
    /// Counts the reads that reach the channel.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    @Test("the connection handler holds read() back while requests wait unanswered, and lets it go with their answers")
    func handlerHoldsReads() throws {
        let channel = EmbeddedChannel()
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        // The engine on the channel's loop: requests are decided in the read's own call.
        let engine = try RuleEngine(source: #"return { rcpt = { rule("ok", function(ctx) end) } }"#, path: "policy.lua",
                                    resolvers: SingleResolver(resolver), tracing: false,
                                    executor: EventLoopExecutor(channel.embeddedEventLoop))
        let service = PolicyService(engine: engine, logger: .policyTests)
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(PolicyAnswerHandler(service: service, logger: .policyTests))
        // Not writable: the two requests of one read wait undecided.
        channel.isWritable = false
        let two = PolicyClient.encode(request("RCPT", instance: "held", recipient: "a@x.test"))
            + PolicyClient.encode(request("RCPT", instance: "held", recipient: "b@x.test"))
        try channel.writeInbound(channel.allocator.buffer(bytes: two))
        channel.read()
        channel.read()
        #expect(counter.reads == 0, "two requests unanswered: no read")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(decoding: $0.readableBytesView, as: UTF8.self) } == "action=DUNNO\n\n")
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(decoding: $0.readableBytesView, as: UTF8.self) } == "action=DUNNO\n\n")
        #expect(counter.reads == 1, "the held read goes out with the answers")
        channel.read()
        #expect(counter.reads == 2)
        _ = try? channel.finish()
    }

    @Test("read() is held back while a request has no answer, and released by the answer")
    func readHeldBack() {
        var gate = ReadGate()
        #expect(gate.mayRead() == true)
        gate.requestTaken()
        #expect(gate.mayRead() == false, "no read while the request is unanswered")
        #expect(gate.mayRead() == false)
        #expect(gate.answered() == true, "the held read goes out with the answer")
        #expect(gate.mayRead() == true)
        #expect(gate.unanswered == 0)
        #expect(gate.answered() == false && gate.unanswered == 0, "an answer without a request leaves nothing owed")
    }
}
