import Rules
import Testing

@Suite("ctx.add_header")
struct HeaderTests {
    @Test("a header is added once per message, whichever stages add it")
    func oncePerMessage() async throws {
        let harness = try Harness("""
            return {
              helo = { action("h", function(ctx) ctx.add_header("X-Test", "one") ctx.add_header("X-Test", "one") end) },
              mail = { action("m", function(ctx) ctx.add_header("X-Test", "one") ctx.add_header("X-Other", "two, ütf-8") end) },
            }
            """)
        let transaction = await harness.engine.beginTransaction(defaultSession)
        let helo = await harness.engine.evaluate(.helo, in: transaction)
        let mail = await harness.engine.evaluate(.mail, in: transaction)
        #expect(helo.headers.map(\.description) == ["X-Test: one"])
        #expect(mail.headers.map(\.description) == ["X-Other: two, ütf-8"])
        #expect(await harness.engine.headers(of: transaction).map(\.description) == ["X-Test: one", "X-Other: two, ütf-8"])
        await harness.engine.endTransaction(transaction)
    }

    @Test("a simulated message carries one header per answer at RCPT and DATA; a session without recipients sends none")
    func delivery() async throws {
        let harness = try Harness("""
            return {
              mail = { action("m", function(ctx) ctx.add_header("X-Mail", "1") ctx.add_header("X-Mail", "2") end) },
              rcpt = { rule("r", function(ctx)
                if ctx.rcpt.local_part == "no" then return reject() end
                ctx.add_header("X-Rcpt", ctx.rcpt.local_part)
              end) },
              data = { action("d", function(ctx) ctx.add_header("X-Data", "1") end) },
            }
            """)
        func delivered(_ recipients: [String]) async -> (on: [String], off: [String]) {
            let report = await harness.engine.simulate(SimulatedSession(base: defaultSession, recipients: recipients.map { MailAddress($0) }))
            let delivery = report.headerDelivery
            return (delivery.onMessage.map(\.description), delivery.notOnMessage.map { "\($0.header) (\($0.reason))" })
        }
        // Two answers (RCPT, DATA) for four headers, in the order they were added.
        let one = await delivered(["a@implicit.test"])
        #expect(one.on == ["X-Mail: 1", "X-Mail: 2"])
        #expect(one.off == ["X-Rcpt: a (\(HeaderDelivery.noAnswerAdvice))", "X-Data: 1 (\(HeaderDelivery.noAnswerAdvice))"])
        // A refused recipient's answer carries none.
        let refused = await delivered(["a@implicit.test", "no@implicit.test", "b@implicit.test"])
        #expect(refused.on == ["X-Mail: 1", "X-Mail: 2", "X-Rcpt: a"])
        #expect(refused.off.count == 2)
        let none = await delivered([])
        #expect(none.on == [])
        #expect(none.off == ["X-Mail: 1 (\(HeaderDelivery.noMessageAdvice))", "X-Mail: 2 (\(HeaderDelivery.noMessageAdvice))"])
    }

    @Test("a session refused before its recipients sends no message: its headers say where it was refused")
    func refusedSession() async throws {
        let harness = try Harness("""
            return { mail = { rule("spf", function(ctx)
              ctx.add_header("Received-SPF", "fail")
              return reject(replies.spf_fail)
            end) } }
            """)
        let report = await harness.engine.simulate(SimulatedSession(base: defaultSession, recipients: [MailAddress("bob@implicit.test")]))
        #expect(report.stoppedAt == .mail)
        let delivery = report.headerDelivery
        #expect(delivery.onMessage.isEmpty)
        #expect(delivery.notOnMessage.map { "\($0.header) (\($0.reason))" }
                == ["Received-SPF: fail (the session was refused at mail, so it sent no message)"])
    }

    @Test("in a dry run the client goes on past a refusal, and the DUNNO answers carry the headers to the message")
    func dryRunDelivery() async throws {
        let harness = try Harness("""
            return {
              connect = { action("c", function(ctx) ctx.add_header("X-Connect", "1") end) },
              mail = { rule("spf", function(ctx)
                ctx.add_header("Received-SPF", "fail")
                ctx.add_header("Authentication-Results", "spf=fail")
                if ctx.mail_from.domain == "refused.test" then return reject(replies.spf_fail) end
              end) },
              rcpt = { rule("r", function(ctx)
                ctx.add_header("X-Rcpt", ctx.rcpt.local_part)
                if ctx.rcpt.local_part ~= "ok" then return reject() end
              end) },
              data = { action("d", function(ctx) ctx.add_header("X-Data", tostring(#ctx.rcpts)) end) },
            }
            """)
        func session(from sender: String, to recipients: [String], dryRun: Bool = true) async -> SessionReport {
            var base = defaultSession
            base.mailFrom = MailAddress(sender)
            return await harness.engine.simulate(SimulatedSession(base: base, recipients: recipients.map { MailAddress($0) },
                                                                  dryRun: dryRun))
        }
        func described(_ delivery: HeaderDelivery) -> (on: [String], off: [String]) {
            (delivery.onMessage.map(\.description), delivery.notOnMessage.map { "\($0.header) (\($0.reason))" })
        }
        // Refused at mail: the rules stop there, as enforced; the client still asks at each
        // RCPT and at DATA, and each DUNNO carries one header.
        let atMail = await session(from: "a@refused.test", to: ["x@implicit.test", "y@implicit.test"])
        #expect(atMail.stoppedAt == .mail)
        #expect(atMail.steps.map(\.result.stage) == [.connect, .helo, .mail])
        #expect(described(atMail.headerDelivery).on == ["X-Connect: 1", "Received-SPF: fail", "Authentication-Results: spf=fail"])
        #expect(described(atMail.headerDelivery).off.isEmpty)
        // With one recipient, two answers for three headers.
        let short = await session(from: "a@refused.test", to: ["x@implicit.test"])
        #expect(described(short.headerDelivery).on == ["X-Connect: 1", "Received-SPF: fail"])
        #expect(described(short.headerDelivery).off == ["Authentication-Results: spf=fail (\(HeaderDelivery.noAnswerAdvice))"])
        // Enforced, the same session sends no message.
        let enforced = await session(from: "a@refused.test", to: ["x@implicit.test", "y@implicit.test"], dryRun: false)
        #expect(described(enforced.headerDelivery).on.isEmpty)
        #expect(described(enforced.headerDelivery).off.count == 3)
        // Every recipient refused: a refused recipient's DUNNO carries a header, and so does
        // DATA, where no rule runs (enforced, the client would not get there).
        let everyRecipient = await session(from: "a@pass.test", to: ["x@implicit.test", "y@implicit.test"])
        #expect(everyRecipient.stoppedAt == .rcpt)
        #expect(!everyRecipient.steps.contains { $0.result.stage == .data })
        #expect(described(everyRecipient.headerDelivery).on == ["X-Connect: 1", "Received-SPF: fail", "Authentication-Results: spf=fail"])
        #expect(described(everyRecipient.headerDelivery).off == [
            "X-Rcpt: x (\(HeaderDelivery.noAnswerAdvice))", "X-Rcpt: y (\(HeaderDelivery.noAnswerAdvice))",
        ])
        // Nothing refused: a dry run delivers what an enforced run does.
        let accepted = await session(from: "a@pass.test", to: ["ok@implicit.test"])
        let acceptedEnforced = await session(from: "a@pass.test", to: ["ok@implicit.test"], dryRun: false)
        #expect(described(accepted.headerDelivery) == described(acceptedEnforced.headerDelivery))
        // No recipient, no message, dry run or not.
        let none = await session(from: "a@refused.test", to: [])
        #expect(described(none.headerDelivery).on.isEmpty)
        #expect(described(none.headerDelivery).off.first == "X-Connect: 1 (\(HeaderDelivery.noMessageAdvice))")
    }

    @Test("a header that could inject a line is a script error", arguments: [
        ("ctx.add_header('X-Evil', 'a\\r\\nX-Injected: yes')", "no CR, LF, NUL"),
        ("ctx.add_header('X-Evil', 'a\\0b')", "no CR, LF, NUL"),
        ("ctx.add_header('X Evil', 'a')", "invalid header name"),
        ("ctx.add_header('X:Evil', 'a')", "invalid header name"),
        ("ctx.add_header('X-Long', ('a'):rep(2000))", "longer than 998"),
        ("ctx.add_header('X-Test')", "expected two strings"),
    ])
    func injection(call: String, message: String) async throws {
        let harness = try Harness(script(.mail, call))
        let result = await harness.run(.mail)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains(message) == true, "\(result.failure ?? "")")
        #expect(result.headers.isEmpty)
    }

    @Test("Received-SPF and Authentication-Results quote what is not a token and keep comments free of parentheses")
    func quotingAndComments() async throws {
        let harness = try Harness(#"""
            return {
              mail = { action("h", function(ctx)
                local r = { result = "fail", client_ip = "192.0.2.1", envelope_from = 'we "ird"\\@x.test', helo = "h.test",
                            receiver = "mx (1)", identity = "mailfrom", domain = "x.test", mechanism = "-all" }
                ctx.add_header("Received-SPF", spf.received_header(r))
                ctx.add_header("Authentication-Results", authres(ctx, { iprev = { status = "pass", name = "a(b)\\c.test" }, spf = r }))
                ctx.add_header("X-Empty", authres(ctx, {}))
              end) },
            }
            """#)
        let result = await harness.run(.mail)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        let headers = result.headers.map(\.description)
        #expect(headers.count == 3)
        #expect(headers.first == #"Received-SPF: fail (mx 1: domain of x.test does not designate 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from="we \"ird\"\\@x.test"; helo=h.test; receiver="mx (1)"; identity=mailfrom; mechanism=-all"#)
        let server = defaultSession.serverName ?? "localhost"
        let sender = defaultSession.mailFrom?.address ?? ""
        #expect(headers.dropFirst().first == "Authentication-Results: \(server); iprev=pass policy.iprev=\(defaultSession.clientIP) (abc.test); spf=fail smtp.mailfrom=\(sender)")
        #expect(headers.last == "X-Empty: \(server); none")
    }

    /// Received-SPF wrote `envelope-from=a@x.test`, `client-ip=2001:db8::1`,
    /// `mechanism=ip4:192.0.2.0/24` and `helo=mail.test.` unquoted: none is a dot-atom, which
    /// is what RFC 7208 §9.1 lets a key-value pair hold unquoted. Authentication-Results wrote
    /// `policy.iprev=2001:db8::1`, neither a token nor an address (RFC 8601 §2.2).
    @Test("values quoted where the headers' grammars ask: dot-atoms in Received-SPF, tokens or addresses in Authentication-Results")
    func quotingByGrammar() async throws {
        let harness = try Harness(#"""
            return {
              mail = { action("h", function(ctx)
                for _, r in ipairs({
                  { result = "pass", client_ip = "2001:db8::1", envelope_from = "a@x.test", helo = "mail.test.",
                    receiver = "mx.test", domain = "x.test", mechanism = "ip4:192.0.2.0/24" },
                  { result = "pass", client_ip = "192.0.2.1", envelope_from = "a.b+c@x.test", helo = "a..b",
                    receiver = ".mx", domain = "x.test", mechanism = "mx//64" },
                }) do
                  ctx.add_header("Received-SPF", spf.received_header(r))
                end
                ctx.add_header("Authentication-Results", authres(ctx, { iprev = "pass", spf = "pass" }))
              end) },
            }
            """#)
        var session = defaultSession
        session.clientIP = "2001:db8::1"
        session.mailFrom = MailAddress("a.b+c@x.test")
        let result = await harness.run(.mail, session)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        let server = defaultSession.serverName ?? "localhost"
        #expect(result.headers.map(\.description) == [
            #"Received-SPF: pass (mx.test: domain of x.test designates 2001:db8::1 as permitted sender) client-ip="2001:db8::1"; envelope-from="a@x.test"; helo="mail.test."; receiver=mx.test; identity=mailfrom; mechanism="ip4:192.0.2.0/24""#,
            #"Received-SPF: pass (.mx: domain of x.test designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from="a.b+c@x.test"; helo="a..b"; receiver=".mx"; identity=mailfrom; mechanism=mx//64"#,
            #"Authentication-Results: \#(server); iprev=pass policy.iprev="2001:db8::1"; spf=pass smtp.mailfrom=a.b+c@x.test"#,
        ])
    }

    @Test("a client's overlong address or HELO name is left out of Received-SPF and Authentication-Results, which still fit on their line")
    func overlongPartsLeftOut() async throws {
        // Found by scripts/fuzz.sh policy-session: a 900-character sender made the header too
        // long for ctx.add_header, and the default policy deferred the sender with 451 4.3.0.
        let harness = try Harness(#"""
            return {
              mail = { action("h", function(ctx)
                local long = ("x"):rep(900) .. "@x.test"
                local r = { result = "pass", client_ip = "192.0.2.1", envelope_from = long, helo = "h.test",
                            receiver = "mx.test", identity = "mailfrom", domain = ("d"):rep(300), mechanism = "mx" }
                ctx.add_header("Received-SPF", spf.received_header(r))
                ctx.add_header("X-Helo", spf.received_header({ result = "none", client_ip = "192.0.2.1", domain = "x.test",
                                                               envelope_from = "a@x.test", helo = ("h"):rep(990) }))
                ctx.add_header("Authentication-Results", authres(ctx, { iprev = "pass", spf = { result = "pass", identity = "helo" } }))
              end) },
            }
            """#)
        var session = defaultSession
        session.helo = String(repeating: "h", count: 990)
        let result = await harness.run(.mail, session)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        let headers = result.headers.map(\.description)
        #expect(headers.count == 3)
        #expect(headers.allSatisfy { $0.utf8.count <= 998 })
        #expect(headers.first == "Received-SPF: pass (mx.test: domain of \(String(repeating: "d", count: 253)) designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; helo=h.test; receiver=mx.test; identity=mailfrom; mechanism=mx")
        #expect(headers.dropFirst().first == "X-Helo: none (vrules: domain of x.test does not designate 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from=\"a@x.test\"; identity=mailfrom")
        let server = defaultSession.serverName ?? "localhost"
        #expect(headers.last == "Authentication-Results: \(server); iprev=pass policy.iprev=\(defaultSession.clientIP); spf=pass")
    }

    /// A table without its status, or a word of the script's own, went into the header as
    /// is: `spf=table: 0x5581...`, `iprev=ok`. The errors name the script's line.
    @Test("authres takes only its methods' result words; anything else is an error at the script's line")
    func authresResultWords() async throws {
        let harness = try Harness(#"""
        return {
          mail = { action("h", function(ctx)
            local errors = {}
            for _, results in ipairs({ { spf = {} }, { spf = "ok" }, { iprev = 5 }, { iprev = "softfail" },
                                       { iprev = { status = "none" } }, { spf = { result = "pass\r\nX: y" } } }) do
              local ok, e = pcall(function()
                return (authres(ctx, results))
              end)
              errors[#errors + 1] = tostring(ok) .. " " .. e:gsub("[\r\n]", "?")
            end
            ctx.add_header("X-E", table.concat(errors, " | "))
            ctx.add_header("X-A", authres(ctx, { iprev = "permerror", spf = "softfail" }))
            local ok, e = pcall(function()
              local value = spf.check_host("junk", "example.com", "a@example.com")
            end)
            ctx.add_header("X-W", e)
          end) },
        }
        """#)
        let result = await harness.run(.mail)
        #expect(result.failure == nil, "\(result.failure ?? "")")
        func refused(_ method: String, _ got: String) -> String {
            "false test.lua:7: authres: \(method) must be a result of its check or one of its status strings, got \(got)"
        }
        let server = defaultSession.serverName ?? "localhost"
        let refusals = [refused("spf", "a table without 'result'"), refused("spf", "'ok'"), refused("iprev", "'5'"),
                        refused("iprev", "'softfail'"), refused("iprev", "'none'"), refused("spf", "'pass??X: y'")]
        #expect(result.headers.map(\.description) == [
            "X-E: " + refusals.joined(separator: " | "),
            "X-A: \(server); iprev=permerror policy.iprev=\(defaultSession.clientIP); spf=softfail smtp.mailfrom=\(defaultSession.mailFrom?.address ?? "")",
            "X-W: test.lua:14: spf.check_host: invalid IP address 'junk'",
        ])
    }

    @Test("statuses given as strings, the HELO identity, a problem for permerror, and the errors for wrong arguments")
    func statusesIdentitiesAndErrors() async throws {
        // The same rule twice: once ending in a call with no result (line 9), once without it.
        func script(lastLine: String) -> String {
            #"""
            return {
              mail = { action("h", function(ctx)
                ctx.add_header("X-A", authres(ctx, { iprev = "fail", spf = { result = "none", identity = "helo" } }))
                ctx.add_header("X-B", spf.received_header({ result = "permerror", client_ip = "192.0.2.1", domain = "d.test",
                                                            reason = "two records", mechanism = false }))
                local _, e1 = pcall(authres, ctx, "pass")
                local _, e2 = pcall(spf.received_header, { result = 1 })
                ctx.add_header("X-E", e1 .. " | " .. e2)
                \#(lastLine)
              end) },
            }
            """#
        }
        let harness = try Harness(script(lastLine: "spf.received_header()"))
        let result = await harness.run(.mail)
        let server = defaultSession.serverName ?? "localhost"
        let helo = defaultSession.helo ?? ""
        #expect(result.failure?.hasSuffix("test.lua:9: spf.received_header(result): expected the result of spf.check or spf.check_host") == true,
                "\(result.failure ?? "")")
        #expect(result.headers.isEmpty)
        let ok = try Harness(script(lastLine: ""))
        let fine = await ok.run(.mail)
        #expect(fine.failure == nil, "\(fine.failure ?? "")")
        #expect(fine.headers.map(\.description) == [
            "X-A: \(server); iprev=fail policy.iprev=\(defaultSession.clientIP); spf=none smtp.helo=\(helo)",
            #"X-B: permerror (vrules: domain of d.test does not designate 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from=""; identity=mailfrom; problem="two records""#,
            "X-E: authres(ctx, { iprev = ..., spf = ... }): expected the context and a table of results | spf.received_header(result): expected the result of spf.check or spf.check_host",
        ])
    }
}
