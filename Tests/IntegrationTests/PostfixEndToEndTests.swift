import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import VrulesTestSupport

/// A real Postfix (Debian package `postfix`) asks `vrules serve` through
/// `check_policy_service`, and vrules asks a real authoritative server (Knot DNS, Debian
/// package `knot`) on loopback. An SMTP client connects from chosen 127.0.0.x addresses;
/// every assertion is read off the SMTP dialogue with Postfix. With Postfix's default
/// `smtpd_delay_reject = yes` the policy is asked at RCPT, so that is where the connect-
/// and mail-stage verdicts of rules/main.lua show up.
///
/// Clients (Tests/Fixtures/postfix):
///   127.0.0.10, .13  PTR and A agree (iprev pass)
///   127.0.0.11       no PTR (iprev permerror)
///   127.0.0.12       PTR whose name points elsewhere (iprev fail)
///   127.0.0.14       reverse zone that Knot answers SERVFAIL for (DNS outage)
///   127.0.0.15       good, but asked only after knotd has been stopped (DNS outage)
@Suite("Postfix end to end")
struct PostfixEndToEndTests {
    static let helo = "client.postfix.test"
    static let sender = "alice@sender.postfix.test"
    static let recipient = "bob@rcpt.postfix.test"

    func session(_ environment: MailEnvironment, from source: String, helo: String = helo, sender: String = sender) async throws -> SMTPSession {
        let port = environment.smtpPort
        do {
            return try await blocking {
                try SMTPSession.run(port: port, source: source, helo: helo, from: sender, to: Self.recipient)
            }
        } catch {
            throw SetupError(description: "\(error)\n\(environment.diagnostics)")
        }
    }

    /// The checks every session shares: Postfix greeted and took EHLO and MAIL FROM (with
    /// `smtpd_delay_reject = yes` nothing is refused before RCPT), and QUIT ended it.
    func expectOrdinaryStart(_ session: SMTPSession, _ environment: MailEnvironment) {
        let context = Comment(rawValue: "SMTP dialogue:\n\(session.transcript)\n\(environment.diagnostics)")
        #expect(session.greeting.code == 220, context)
        #expect(session.ehlo.code == 250, context)
        #expect(session.mail.code == 250, context)
        #expect(session.quit.code == 221, context)
    }

    /// The queue file of a session's message, which Postfix must have taken (250 at RCPT and
    /// after DATA), as `postcat` prints it.
    func queuedMessage(of session: SMTPSession, in environment: MailEnvironment,
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let context = Comment(rawValue: "SMTP dialogue:\n\(session.transcript)\n\(environment.diagnostics)")
        #expect(session.rcpt.code == 250 && session.message?.code == 250, context, sourceLocation: sourceLocation)
        let id = try #require(session.message?.description.components(separatedBy: "queued as ").last?
            .prefix { $0.isLetter || $0.isNumber }, context, sourceLocation: sourceLocation)
        return try environment.queuedMessage(id: String(id))
    }

    func expectRcpt(_ session: SMTPSession, _ environment: MailEnvironment, code: Int, enhanced: String, text: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
        let context = Comment(rawValue: "SMTP dialogue:\n\(session.transcript)\n\(environment.diagnostics)")
        #expect(session.rcpt.code == code, context, sourceLocation: sourceLocation)
        #expect(session.rcpt.enhancedCode == enhanced, context, sourceLocation: sourceLocation)
        // Postfix keeps vrules' text after its own prefix ("<...>: Recipient address rejected: ").
        #expect(session.rcpt.description.contains(text), context, sourceLocation: sourceLocation)
        #expect(session.data == nil, "no DATA after a refused recipient", sourceLocation: sourceLocation)
    }

    @Test("a chrooted smtpd reaches vrules over its UNIX socket (private/vrules, mode 0660, group postfix)")
    func chrootedSmtpdOverUNIXSocket() async throws {
        let environment = try await blocking {
            try MailEnvironment(name: "postfix-chroot", restrictions: .recipientOverChrootedSocket)
        }
        defer { environment.shutdown() }
        var status = stat()
        #expect(stat(environment.policySocket.path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o660, "socket mode \(String(status.st_mode & 0o777, radix: 8))")
        #expect(getgrgid(status.st_gid).map { String(cString: $0.pointee.gr_name) } == "postfix")
        let good = try await self.session(environment, from: "127.0.0.10")
        self.expectOrdinaryStart(good, environment)
        #expect(good.rcpt.code == 250, Comment(rawValue: "SMTP dialogue:\n\(good.transcript)\n\(environment.diagnostics)"))
        let bad = try await self.session(environment, from: "127.0.0.12")
        self.expectRcpt(bad, environment, code: 550, enhanced: "5.7.25", text: "Reverse DNS validation failed")
    }

    /// Postfix documents `server_port` in its policy requests; this shows that it sends it, and
    /// that rules read it as the port smtpd listened on (and `client_port` as a number).
    @Test("ctx.server.port is the port smtpd took the connection on, as Postfix sends it")
    func serverPort() async throws {
        let environment = try await blocking {
            try MailEnvironment(name: "postfix-port", rules: """
                return { rcpt = { rule("ports", function(ctx)
                  return reject(reply(550, "5.7.1", "server port " .. tostring(ctx.server.port)
                    .. ", client port a number: " .. tostring(math.type(ctx.client.port) == "integer")))
                end) } }
                """)
        }
        defer { environment.shutdown() }
        let session = try await self.session(environment, from: "127.0.0.10")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 550, enhanced: "5.7.1",
                        text: "server port \(environment.smtpPort), client port a number: true")
    }

    @Test("connections held idle by another client cannot keep Postfix out: at the cap the idlest is closed, and Postfix reopens its own")
    func postfixAfterEviction() async throws {
        // max_connections 2: one kept, the second place for a newcomer while the idlest closes.
        // One smtpd process, so the second session is served by the smtpd whose connection
        // was closed.
        let environment = try await blocking {
            try MailEnvironment(name: "postfix-evict", maxConnections: 2, smtpdProcesses: 1)
        }
        defer { environment.shutdown() }
        let first = try await self.session(environment, from: "127.0.0.10")
        #expect(first.rcpt.code == 250, Comment(rawValue: "SMTP dialogue:\n\(first.transcript)\n\(environment.diagnostics)"))
        // smtpd keeps its policy connection open after the session. Two connections that never
        // ask: the first closes Postfix's, the second the first.
        let port = Int(environment.policyPort)
        let holders = try (0..<2).map { _ in try PolicyClient(port: port) }
        try await Task.sleep(for: .milliseconds(200))
        let started = Date()
        let second = try await self.session(environment, from: "127.0.0.13")
        let context = Comment(rawValue: "SMTP dialogue:\n\(second.transcript)\n\(environment.diagnostics)")
        self.expectOrdinaryStart(second, environment)
        #expect(second.rcpt.code == 250, context)
        #expect(second.message?.code == 250, context)
        // Postfix's retry after a closed connection waits a second; a lock-out would last
        // smtpd_policy_service_timeout (30 s here) and end in 451 4.3.5.
        #expect(Date().timeIntervalSince(started) < 10, context)
        // The holder still open was closed for Postfix.
        let closed = holders.filter { holder in
            holder.setTimeout(seconds: 5)
            do { return try holder.readAnswer() == nil } catch { return false }
        }
        #expect(closed.count == 2, context)
        // Postfix's connection, then each holder's, was the one closed; and one smtpd served
        // both sessions, so it reopened the connection it found closed.
        let log = try String(contentsOf: environment.vrulesLog, encoding: .utf8)
        #expect(log.components(separatedBy: "policy connection idle the longest closed for a newcomer").count - 1 == 3, context)
        let maillog = try String(contentsOf: environment.maillog, encoding: .utf8)
        let smtpd = { (client: String) in
            maillog.split(separator: "\n").first { $0.contains("connect from unknown[\(client)]") }?
                .split(separator: "[").dropFirst().first?.prefix { $0.isNumber }
        }
        #expect(smtpd("127.0.0.10") != nil && smtpd("127.0.0.10") == smtpd("127.0.0.13"), context)
    }

    @Test("a client whose PTR and A agree is accepted, and so is its message")
    func goodClientAccepted() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.10")
        let context = Comment(rawValue: "SMTP dialogue:\n\(session.transcript)\n\(environment.diagnostics)")
        self.expectOrdinaryStart(session, environment)
        #expect(session.data?.code == 354, context)
        // The queued message carries the default policy's headers, each once.
        let queued = try self.queuedMessage(of: session, in: environment)
        let lines = queued.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("Received-SPF: none (") }.count == 1, "\(queued)")
        #expect(lines.filter { $0.hasPrefix("Authentication-Results: ") && $0.hasSuffix("; iprev=pass policy.iprev=127.0.0.10; spf=none smtp.mailfrom=alice@sender.postfix.test") }.count == 1,
                "\(queued)")
    }

    @Test("a client without a PTR record gets 550 5.7.25")
    func noReverseDNS() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.11")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 550, enhanced: "5.7.25", text: "Reverse DNS validation failed")
    }

    @Test("a client whose PTR name does not point back gets 550 5.7.25")
    func reverseDNSDoesNotConfirm() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.12")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 550, enhanced: "5.7.25", text: "Reverse DNS validation failed")
    }

    @Test("a good client with a Null MX sender domain gets 550 5.7.27")
    func nullMXSender() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.13", sender: "alice@nullmx.postfix.test")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 550, enhanced: "5.7.27", text: "Sender address has null MX")
    }

    @Test("an SPF fail sender gets 550 5.7.23 with the domain's explanation")
    func spfFail() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.13", sender: "alice@spf-fail.postfix.test")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 550, enhanced: "5.7.23",
                        text: "127.0.0.13 is not allowed to send for spf-fail.postfix.test")
    }

    /// What `[policy] dry_run` is for: the SPF rejection watched on live mail first.
    @Test("dry run: an SPF fail sender's, an unnamed client's and a bad HELO name's messages are queued with the results they would have been refused for, and the refusals are logged")
    func dryRunSPFFail() async throws {
        let environment = try await blocking { try MailEnvironment(name: "postfix-dry-run", dryRun: true) }
        defer { environment.shutdown() }
        let session = try await self.session(environment, from: "127.0.0.13", sender: "alice@spf-fail.postfix.test")
        self.expectOrdinaryStart(session, environment)
        let queued = try self.queuedMessage(of: session, in: environment)
        // The default policy adds its SPF headers before it decides: the refusal is not sent,
        // so the message comes, and carries the result the refusal would have been for.
        #expect(queued.contains("Received-SPF: fail ("), "\(queued)")
        #expect(queued.contains("spf=fail smtp.mailfrom=alice@spf-fail.postfix.test"), "\(queued)")
        // A client without reverse DNS, refused at connect enforced: its message comes, and
        // says why it would have been refused.
        let unnamedMessage = try self.queuedMessage(of: try await self.session(environment, from: "127.0.0.11"), in: environment)
        #expect(unnamedMessage.contains("; iprev=permerror policy.iprev=127.0.0.11"), "\(unnamedMessage)")
        #expect(!unnamedMessage.contains("Received-SPF:"), "\(unnamedMessage)")
        // A HELO name the policy refuses, before SPF runs: the message carries the reverse
        // DNS result known by then.
        let localhostMessage = try self.queuedMessage(of: try await self.session(environment, from: "127.0.0.13", helo: "localhost"),
                                                      in: environment)
        #expect(localhostMessage.contains("; iprev=pass policy.iprev=127.0.0.13"), "\(localhostMessage)")
        #expect(!localhostMessage.contains("Received-SPF:"), "\(localhostMessage)")
        let log = try String(contentsOf: environment.vrulesLog, encoding: .utf8)
        #expect(log.contains("would=550 5.7.23 "), "\(log)")
        #expect(log.contains("would=550 5.7.25 "), "\(log)")
        #expect(log.contains("would=550 5.7.1 Invalid HELO/EHLO name"), "\(log)")
        #expect(log.contains("dry run: answered DUNNO in place of a refusal"), "\(log)")
    }

    @Test("an SPF check that meets a DNS failure gets 451 4.7.24")
    func spfTemperror() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.13", sender: "alice@spf-down.postfix.test")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 451, enhanced: "4.7.24", text: "SPF validation error, try again later")
    }

    @Test("the authoritative server answers SERVFAIL for the client's reverse zone: 451 4.4.3")
    func reverseZoneServfail() async throws {
        let environment = try await SharedEnvironment.shared.get()
        let session = try await self.session(environment, from: "127.0.0.14")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 451, enhanced: "4.4.3", text: "Directory server failure")
    }

    @Test("knotd stopped: a client whose PTR is not cached gets 451 4.4.3, no reject and no accept")
    func dnsServerDown() async throws {
        // An environment of its own: stopping its knotd must not disturb the other tests.
        let environment = try await blocking { try MailEnvironment(name: "postfix-outage") }
        defer { environment.shutdown() }
        // DNS up: a good client is accepted, so the 451 below comes from the outage alone.
        let before = try await self.session(environment, from: "127.0.0.10")
        #expect(before.rcpt.code == 250, Comment(rawValue: "SMTP dialogue:\n\(before.transcript)\n\(environment.diagnostics)"))
        environment.stopDNS()
        let session = try await self.session(environment, from: "127.0.0.15")
        self.expectOrdinaryStart(session, environment)
        self.expectRcpt(session, environment, code: 451, enhanced: "4.4.3", text: "Directory server failure")
    }

    @Test("behind a proxy (XCLIENT, smtpd_delay_reject = no, policy only in the client restrictions): a client without a PTR gets 550 5.7.25 at XCLIENT")
    func xclientClientWithoutReverseDNS() async throws {
        let environment = try await blocking { try MailEnvironment(name: "postfix-xclient", restrictions: .clientWithXCLIENT) }
        defer { environment.shutdown() }
        let port = environment.smtpPort
        let (good, bad) = try await blocking { () -> ([SMTPReply], [SMTPReply]) in
            // The proxy (127.0.0.1, trusted) hands over a client whose PTR and A agree...
            let proxy = try SMTPClient(source: "127.0.0.1", port: port)
            var good = [try proxy.readReply(), try proxy.command("EHLO proxy.postfix.test")]
            good.append(try proxy.command("XCLIENT ADDR=127.0.0.10"))
            good.append(try proxy.command("EHLO \(Self.helo)"))
            good.append(try proxy.command("MAIL FROM:<\(Self.sender)>"))
            good.append(try proxy.command("RCPT TO:<\(Self.recipient)>"))
            good.append(try proxy.command("QUIT"))
            // ...then one without a PTR record.
            let second = try SMTPClient(source: "127.0.0.1", port: port)
            var bad = [try second.readReply(), try second.command("EHLO proxy.postfix.test")]
            bad.append(try second.command("XCLIENT ADDR=127.0.0.11"))
            bad.append(try second.command("QUIT"))
            return (good, bad)
        }
        let context = Comment(rawValue: "good: \(good.map(\.description))\nbad: \(bad.map(\.description))\n\(environment.diagnostics)")
        #expect(good.map(\.code) == [220, 250, 220, 250, 250, 250, 221], context)
        #expect(bad[0].code == 220 && bad[1].code == 250, context)
        #expect(bad[2].code == 550, context)
        #expect(bad[2].enhancedCode == "5.7.25", context)
        #expect(bad[2].description.contains("Reverse DNS validation failed"), context)
    }
}
