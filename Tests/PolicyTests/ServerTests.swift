import VrulesTestSupport
import DNS
import Foundation
import NIOCore
@testable import Policy
import Rules
import Testing

let policyZone = """
$ORIGIN test.
good         A 192.0.2.10
$ORIGIN 2.0.192.in-addr.arpa.
10           PTR good.test.
"""

let policyRules = """
return {
  connect = {
    action("count", function(ctx) ctx.vars.connects = (ctx.vars.connects or 0) + 1 end),
    rule("rdns", function(ctx)
      local r = dns.iprev(ctx.client.ip)
      if r.status == "temperror" then return defer() end
      if r.status ~= "pass" then return reject() end
    end),
  },
  helo = { rule("helo", function(ctx) if ctx.helo == "bad.test" then return reject("550 5.7.1 Bad HELO") end end) },
  mail = { rule("mail", function(ctx)
    ctx.vars.sender = ctx.mail_from.address
    if ctx.mail_from.domain == "spam.test" then return reject("554 5.7.1 No spam") end
  end) },
  rcpt = { rule("rcpt", function(ctx)
    ctx.vars.rcpts = (ctx.vars.rcpts or 0) + 1
    if ctx.rcpt.local_part == "vip" then return accept() end
    if ctx.rcpt.local_part == "later" then return defer("450 4.2.1 Mailbox busy") end
    if ctx.rcpt.local_part == "count" then
      return reject(reply(550, "5.1.1", "connects=" .. ctx.vars.connects .. " rcpts=" .. ctx.vars.rcpts .. " sender=" .. ctx.vars.sender))
    end
  end) },
  data = { rule("data", function(ctx) return reject(reply(554, "5.7.1", "rcpts=" .. ctx.vars.rcpts)) end) },
  preq = { rule("preq", function(ctx) if ctx.vars.sender == "boom@good.test" then error("kaboom") end end) },
}
"""

/// A policy server on a loopback port over the rules above and a zone resolver.
struct PolicyHarness {
    let server: PolicyServer
    let resolver: ZoneResolver
    let port: Int

    static func start(rules: String = policyRules, configuration: PolicyService.Configuration = PolicyService.Configuration(),
                      limits: PolicyProtocolLimits = PolicyProtocolLimits()) async throws -> PolicyHarness {
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engine = try RuleEngine(source: rules, path: "policy.lua", resolvers: SingleResolver(resolver), tracing: false)
        let service = PolicyService(engine: engine, configuration: configuration, logger: .policyTests)
        let server = PolicyServer(service: service, listen: [.tcp(host: "127.0.0.1", port: 0)], limits: limits, logger: .policyTests)
        let bound = try await server.start()
        return PolicyHarness(server: server, resolver: resolver, port: bound[0].port!)
    }

    func client() throws -> PolicyClient {
        let client = try PolicyClient(port: self.port)
        client.setTimeout(seconds: 10)
        return client
    }

    func stop() async { await self.server.stop() }
}

func request(_ state: String, client: String = "192.0.2.10", instance: String = "i1", helo: String? = "good.test",
             sender: String? = "a@good.test", recipient: String? = nil, extra: [String: String] = [:]) -> [String: String] {
    var attributes = ["request": "smtpd_access_policy", "protocol_state": state, "client_address": client,
                      "client_port": "40000", "client_name": "good.test", "instance": instance]
    if let helo { attributes["helo_name"] = helo }
    if let sender { attributes["sender"] = sender }
    if let recipient { attributes["recipient"] = recipient }
    return attributes.merging(extra) { $1 }
}

@Suite("Policy server over loopback")
struct ServerTests {
    @Test("every protocol state maps to its stage, and verdicts map to actions")
    func statesAndVerdicts() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("CONNECT", instance: "", helo: nil, sender: nil)) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("EHLO", instance: "", helo: "bad.test", sender: nil)) } == "550 5.7.1 Bad HELO")
        #expect(try await blocking { try client.ask(request("HELO", instance: "h2", helo: "fine.test", sender: nil)) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("MAIL", instance: "m1", sender: "x@spam.test")) } == "554 5.7.1 No spam")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "r1", recipient: "vip@x.test")) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "r1", recipient: "later@x.test")) } == "450 4.2.1 Mailbox busy")
        #expect(try await blocking { try client.ask(request("DATA", instance: "r1")) } == "554 5.7.1 rcpts=2")
        #expect(try await blocking { try client.ask(request("VRFY", instance: "")) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("ETRN", instance: "")) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("END-OF-MESSAGE", instance: "e1", sender: "boom@good.test")) } == "451 4.3.0 Local error in processing, try again later")
        #expect(try await blocking { try client.ask(request("RCPT", client: "192.0.2.99", instance: "r9", recipient: "a@x.test")) } == "550 5.7.25 Reverse DNS validation failed")
        harness.resolver.setFault(.servfail, for: "10.2.0.192.in-addr.arpa")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "r10", recipient: "a@x.test")) } == "451 4.4.3 Directory server failure, try again later")
        await harness.stop()
    }

    @Test("ctx.client.port and ctx.server.port are the request's client_port and server_port when each is a port, else nil")
    func ports() async throws {
        let harness = try await PolicyHarness.start(rules: """
        return { connect = { rule("port", function(ctx)
          return reject(reply(550, "5.7.1", "port " .. tostring(ctx.client.port) .. " " .. tostring(ctx.server.port)))
        end) } }
        """)
        let client = try harness.client()
        for (index, (sent, seen)) in [("40000", "40000"), ("0", "0"), ("65535", "65535"), ("65536", "nil"), ("-1", "nil"),
                                      ("99999999999999999999", "nil"), ("junk", "nil")].enumerated() {
            let answer = try await blocking {
                try client.ask(request("CONNECT", instance: "p\(index)", extra: ["client_port": sent, "server_port": "587"]))
            }
            #expect(answer == "550 5.7.1 port \(seen) 587", "client_port=\(sent)")
            // Each client port is a session of its own; so is each server port.
            let server = try await blocking {
                try client.ask(request("CONNECT", instance: "s\(index)", extra: ["client_port": "40000", "server_port": sent]))
            }
            #expect(server == "550 5.7.1 port 40000 \(seen)", "server_port=\(sent)")
        }
        #expect(try await blocking { try client.ask(request("CONNECT", instance: "none", extra: ["client_port": "1"])) }
                == "550 5.7.1 port 1 nil")
        await harness.stop()
    }

    @Test("accept answers OK when so configured")
    func acceptAction() async throws {
        let harness = try await PolicyHarness.start(configuration: PolicyService.Configuration(acceptAction: "OK"))
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("RCPT", recipient: "vip@x.test")) } == "OK")
        #expect(try await blocking { try client.ask(request("RCPT", recipient: "plain@x.test")) } == "DUNNO")
        await harness.stop()
    }

    @Test("dry run: every refusal is answered DUNNO, and vrules holds the transaction as it would enforcing")
    func dryRun() async throws {
        let rules = """
        return {
          helo = { rule("bad helo", function(ctx) if ctx.helo == "bad.test" then return reject(reply(550, "5.7.1", "Bad HELO")) end end) },
          rcpt = { rule("busy", function(ctx) if ctx.rcpt.local_part == "later" then return defer(reply(450, "4.2.1", "busy")) end end) },
          data = { rule("count", function(ctx) ctx.add_header("X-Rcpts", tostring(#ctx.rcpts)) end) },
        }
        """
        let harness = try await PolicyHarness.start(rules: rules, configuration: PolicyService.Configuration(maximumRecipients: 2, dryRun: true))
        let client = try harness.client()
        func ask(_ attributes: [String: String]) async throws -> String? { try await blocking { try client.ask(attributes) } }
        #expect(try await ask(request("EHLO", instance: "", helo: "bad.test", sender: nil)) == "DUNNO")
        #expect(try await ask(request("RCPT", instance: "t1", recipient: "vip@x.test")) == "DUNNO")
        #expect(try await ask(request("RCPT", instance: "t1", recipient: "later@x.test")) == "DUNNO")
        // The refused recipient is not held, as when the refusal is sent: one recipient at DATA.
        #expect(try await ask(request("DATA", instance: "t1")) == "PREPEND X-Rcpts: 1")
        // A recipient past [policy] max_recipients, and a state vrules does not know: their
        // refusals are not sent either.
        for recipient in ["a@x.test", "b@x.test", "c@x.test"] {
            #expect(try await ask(request("RCPT", instance: "t2", recipient: recipient)) == "DUNNO")
        }
        #expect(try await ask(request("DATA", instance: "t2")) == "PREPEND X-Rcpts: 2")
        #expect(try await ask(request("UNHEARD-OF", instance: "t3")) == "DUNNO")
        await harness.stop()

        // The same requests enforced: the refusals the dry run did not send.
        let enforced = try await PolicyHarness.start(rules: rules, configuration: PolicyService.Configuration(maximumRecipients: 2))
        let plain = try enforced.client()
        #expect(try await blocking { try plain.ask(request("EHLO", instance: "", helo: "bad.test", sender: nil)) } == "550 5.7.1 Bad HELO")
        #expect(try await blocking { try plain.ask(request("RCPT", instance: "t1", recipient: "vip@x.test")) } == "DUNNO")
        #expect(try await blocking { try plain.ask(request("RCPT", instance: "t1", recipient: "later@x.test")) } == "450 4.2.1 busy")
        #expect(try await blocking { try plain.ask(request("DATA", instance: "t1")) } == "PREPEND X-Rcpts: 1")
        #expect(try await blocking { try plain.ask(request("UNHEARD-OF", instance: "t3")) }
                == PolicyService.Configuration.defaultUnknownStateAction)
        await enforced.stop()
    }

    @Test("delayed reject: the first request at RCPT runs connect, helo and mail first, in order")
    func delayedStages() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("RCPT", client: "192.0.2.99", instance: "d1", recipient: "a@x.test")) } == "550 5.7.25 Reverse DNS validation failed")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "d2", helo: "bad.test", recipient: "a@x.test")) } == "550 5.7.1 Bad HELO")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "d3", sender: "s@spam.test", recipient: "a@x.test")) } == "554 5.7.1 No spam")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "d4", sender: "s@good.test", recipient: "count@x.test")) } == "550 5.1.1 connects=1 rcpts=1 sender=s@good.test")
        await harness.stop()
    }

    @Test("instance ties a transaction together; repeated identical requests reuse the verdict")
    func instanceAndDedup() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        // Postfix asks once per restriction list: four identical RCPT requests.
        for _ in 0..<4 { #expect(try await blocking { try client.ask(request("RCPT", instance: "t1", recipient: "one@x.test")) } == "DUNNO") }
        #expect(try await blocking { try client.ask(request("RCPT", instance: "t1", recipient: "count@x.test")) } == "550 5.1.1 connects=1 rcpts=2 sender=a@good.test")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "t1", recipient: "count@x.test")) } == "550 5.1.1 connects=1 rcpts=2 sender=a@good.test")
        // Another instance (from another smtpd connection) is another transaction, with its own ctx.vars.
        #expect(try await blocking { try client.ask(request("RCPT", instance: "t2", recipient: "count@x.test", extra: ["client_port": "40002"])) } == "550 5.1.1 connects=1 rcpts=1 sender=a@good.test")
        #expect(try await blocking { try client.ask(request("END-OF-MESSAGE", instance: "t1")) } == "DUNNO")
        #expect(await harness.server.service.transactionCount == 1)
        await harness.stop()
    }

    @Test("identical requests arriving while the stage is still running wait for it instead of running it again")
    func concurrentIdenticalRequests() async throws {
        let harness = try await PolicyHarness.start()
        harness.resolver.setFault(.delay(.milliseconds(300)), for: "10.2.0.192.in-addr.arpa")
        let first = try harness.client()
        let second = try harness.client()
        async let a = blocking { try first.ask(request("RCPT", instance: "same", recipient: "count@x.test")) }
        async let b = blocking { try second.ask(request("RCPT", instance: "same", recipient: "count@x.test")) }
        let answers = try await [a, b]
        #expect(answers == ["550 5.1.1 connects=1 rcpts=1 sender=a@good.test", "550 5.1.1 connects=1 rcpts=1 sender=a@good.test"])
        await harness.stop()
    }

    @Test("a connect verdict from before the instance is known carries over (smtpd_delay_reject = no)")
    func connectBeforeInstance() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        #expect(try await blocking { try client.ask(request("CONNECT", instance: "", helo: nil, sender: nil)) } == "DUNNO")
        #expect(try await blocking { try client.ask(request("RCPT", instance: "x1", recipient: "count@x.test")) } == "550 5.1.1 connects=1 rcpts=1 sender=a@good.test")
        await harness.stop()
    }

    @Test("one connection serves many requests, and many connections at once")
    func reuseAndConcurrency() async throws {
        let harness = try await PolicyHarness.start()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for connection in 0..<8 {
                group.addTask {
                    let client = try harness.client()
                    return try await blocking {
                        var answered = 0
                        for index in 0..<200 {
                            let answer = try client.ask(request("RCPT", instance: "c\(connection)-\(index)", recipient: "u@x.test",
                                                                extra: ["client_port": "\(50_000 + connection)"]))
                            if answer == "DUNNO" { answered += 1 }
                        }
                        return answered
                    }
                }
            }
            var total = 0
            for try await count in group { total += count }
            #expect(total == 1600)
        }
        await harness.stop()
    }

    @Test("malformed input closes the connection without an answer; the server goes on", arguments: [
        "no blank line and no equals\n\n",
        "request=smtpd_access_policy\nprotocol_state=RCPT\n" + String(repeating: "x", count: 20_000) + "\n\n",
        "request=\u{01}\u{02}\u{03}\n\n",
        "request=something_else\nprotocol_state=RCPT\n\n",
    ])
    func malformed(text: String) async throws {
        let harness = try await PolicyHarness.start()
        let bad = try harness.client()
        try await blocking { try bad.send(Array(text.utf8)) }
        #expect(try await blocking { try bad.readAnswer() } == nil)
        let good = try harness.client()
        #expect(try await blocking { try good.ask(request("RCPT", recipient: "u@x.test")) } == "DUNNO")
        await harness.stop()
    }

    @Test("binary junk closes the connection")
    func binaryJunk() async throws {
        let harness = try await PolicyHarness.start()
        let bad = try harness.client()
        try await blocking { try bad.send((0..<512).map { UInt8(truncatingIfNeeded: $0 &* 7919) } + [10, 10]) }
        #expect(try await blocking { try bad.readAnswer() } == nil)
        await harness.stop()
    }

    @Test("an idle connection is closed")
    func idle() async throws {
        let harness = try await PolicyHarness.start(limits: PolicyProtocolLimits(idleTimeout: 1))
        let client = try harness.client()
        // Nothing sent: the server closes the connection (the client's own timeout is 10 s).
        let clock = ContinuousClock()
        let started = clock.now
        #expect(try await blocking { try client.readAnswer() } == nil)
        #expect(clock.now - started < .seconds(9))
        await harness.stop()
    }

    @Test("without END-OF-MESSAGE, a connection's next message ends its previous transaction")
    func nextMessageEndsTransaction() async throws {
        let harness = try await PolicyHarness.start()
        let client = try harness.client()
        try await blocking {
            for index in 0..<300 {
                _ = try client.ask(request("RCPT", instance: "m\(index)", recipient: "u@x.test"))
                _ = try client.ask(request("RCPT", instance: "m\(index)", recipient: "u@x.test"))
            }
            // Another SMTP connection (another client port) keeps its own transaction.
            _ = try client.ask(request("RCPT", instance: "other", recipient: "u@x.test", extra: ["client_port": "40001"]))
        }
        #expect(await harness.server.service.transactionCount == 2)
        await harness.stop()
    }

    @Test("a rule that kept an ended transaction's ctx gets an error, not that transaction's client")
    func endedContext() async throws {
        let harness = try await PolicyHarness.start(rules: """
        local kept = {}
        return { rcpt = { rule("kept", function(ctx)
          local old = kept.ctx
          kept.ctx = ctx
          if old ~= nil and old ~= ctx then return reject(reply(550, "5.7.1", "previous client " .. old.client.ip)) end
        end) } }
        """)
        let client = try harness.client()
        let answers = try await blocking {
            [
                try client.ask(request("RCPT", client: "192.0.2.10", instance: "k1", recipient: "u@x.test")),
                try client.ask(request("RCPT", client: "192.0.2.10", instance: "k1", recipient: "v@x.test")),
                try client.ask(request("END-OF-MESSAGE", client: "192.0.2.10", instance: "k1")),
                try client.ask(request("RCPT", client: "198.51.100.7", instance: "k2", recipient: "u@x.test",
                                       extra: ["client_port": "40001"])),
            ]
        }
        #expect(answers == ["DUNNO", "DUNNO", "DUNNO", "451 4.3.0 Local error in processing, try again later"])
        await harness.stop()
    }

    @Test("transactions expire and are bounded in number")
    func bounded() async throws {
        let harness = try await PolicyHarness.start(configuration: PolicyService.Configuration(maximumTransactions: 100))
        let client = try harness.client()
        try await blocking {
            for index in 0..<1_500 {
                // A connection each, so that only the bound (not the next message) ends them.
                _ = try client.ask(request("RCPT", instance: "b\(index)", recipient: "u@x.test",
                                           extra: ["client_port": "\(10_000 + index)"]))
            }
        }
        let count = await harness.server.service.transactionCount
        #expect(count > 0 && count <= 200, "\(count)")
        await harness.stop()
    }

    @Test("a UNIX socket listener")
    func unixSocket() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-\(UUID().uuidString.prefix(8)).sock").path
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engine = try RuleEngine(source: policyRules, path: "policy.lua", resolvers: SingleResolver(resolver))
        let server = PolicyServer(service: PolicyService(engine: engine, logger: .policyTests), listen: [.unix(path: path)], logger: .policyTests)
        try await server.start()
        let client = try PolicyClient(unixPath: path)
        #expect(try await blocking { try client.ask(request("RCPT", recipient: "later@x.test")) } == "450 4.2.1 Mailbox busy")
        await server.stop()
    }
}

/// Runs blocking socket calls on a thread of their own: on the cooperative pool they
/// would starve the server they talk to.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Leaves a socket file at `path` as a server that died leaves it: bound, nobody listening.
func leaveStaleSocket(at path: String) throws {
    let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(stale) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0 else { throw PolicyClient.Failure(description: "bind \(path): errno \(errno)") }
}
