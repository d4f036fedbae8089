import Rules
import Testing

@Suite("Stages and ctx")
struct ContextTests {
    /// The default session, authenticated, so that every stage runs.
    static var authenticatedSession: SessionInfo {
        var session = defaultSession
        session.authMechanism = "PLAIN"
        session.authUsername = "alice"
        return session
    }

    @Test("every stage runs its own rules, and a whole session goes through them in order")
    func everyStage() async throws {
        var source = "return {\n"
        for (index, stage) in Stage.allCases.enumerated() {
            source += """
              \(stage.rawValue) = { rule("\(stage.rawValue) rule", function(ctx)
                if ctx.stage ~= "\(stage.rawValue)" then return reject("550 5.0.0 wrong stage") end
                return accept(reply(250, "2.0.\(index)", ctx.stage))
              end) },\n
            """
        }
        source += "}"
        let harness = try Harness(source)
        let session = Self.authenticatedSession
        let report = await harness.engine.simulate(SimulatedSession(base: session, recipients: [MailAddress("bob@implicit.test")]))
        #expect(report.steps.map(\.result.stage) == Stage.allCases)
        for (index, step) in report.steps.enumerated() {
            #expect(step.result.verdict.description == "accept 250 2.0.\(index) \(step.result.stage.rawValue)")
        }
        #expect(report.stoppedAt == nil)
    }

    @Test("each stage sees what the dialogue has told by then, though the session holds it all from the start")
    func fieldsByStage() async throws {
        var source = "local function shown(ctx) return table.concat({ tostring(ctx.helo), tostring(ctx.mail_from and ctx.mail_from.address), "
        source += "tostring(ctx.auth and ctx.auth.username), tostring(ctx.rcpt and ctx.rcpt.address), tostring(#ctx.rcpts), tostring(ctx.domain) }, ' ') end\n"
        source += "return {\n"
        for stage in Stage.allCases {
            source += "  \(stage.rawValue) = { rule('r', function(ctx) return accept(reply(250, '2.0.0', shown(ctx))) end) },\n"
        }
        source += "}"
        let harness = try Harness(source)
        let session = Self.authenticatedSession
        let report = await harness.engine.simulate(SimulatedSession(base: session, recipients: [MailAddress("bob@implicit.test")]))
        let helo = session.helo ?? "nil", from = session.mailFrom?.address ?? "nil"
        #expect(report.steps.map { "\($0.result.stage.rawValue): \($0.result.reply.text)" } == [
            "connect: nil nil nil nil 0 nil",
            "helo: \(helo) nil nil nil 0 nil",
            "authenticate: \(helo) nil alice nil 0 nil",
            "mail: \(helo) \(from) alice nil 0 nil",
            "rcpt: \(helo) \(from) alice bob@implicit.test 1 implicit.test",
            "data: \(helo) \(from) alice bob@implicit.test 1 implicit.test",
            "preq: \(helo) \(from) alice bob@implicit.test 1 implicit.test",
        ])
    }

    @Test("a ctx kept past its transaction cannot be read: the next transaction's rules get an error, not the old client")
    func endedContext() async throws {
        // The script keeps each transaction's ctx in a top-level table (allowed: the table is
        // the script's own) and reads the kept one in the next transaction.
        let harness = try Harness("""
        local kept = {}
        return {
          connect = { rule("kept", function(ctx)
            local old = kept.ctx
            kept.ctx = ctx
            kept.vars = ctx.vars
            ctx.vars.ip = ctx.client.ip
            if old == nil then return accept(reply(250, "2.0.0", "first")) end
            return accept(reply(250, "2.0.0", "previous " .. tostring(old.client.ip)))
          end) },
          helo = { rule("same transaction", function(ctx)
            if kept.ctx ~= ctx then return reject() end
            return accept(reply(250, "2.0.0", kept.ctx.client.ip .. " " .. kept.vars.ip))
          end) },
        }
        """)
        var first = defaultSession
        first.clientIP = "192.0.2.10"
        let one = await harness.engine.beginTransaction(first)
        #expect(await harness.engine.evaluate(.connect, in: one).reply.text == "first")
        // Within its transaction the kept ctx is the rule's own, from stage to stage.
        #expect(await harness.engine.evaluate(.helo, in: one).reply.text == "192.0.2.10 192.0.2.10")
        await harness.engine.endTransaction(one)

        var second = defaultSession
        second.clientIP = "198.51.100.7"
        let two = await harness.engine.beginTransaction(second)
        let result = await harness.engine.evaluate(.connect, in: two)
        #expect(result.verdict.description.hasPrefix("defer 451 4.3.0"), "\(result.verdict)")
        let failure = try #require(result.failure)
        #expect(failure.contains("this ctx belongs to a transaction that has ended (field 'client')"), "\(failure)")
        #expect(!failure.contains("192.0.2.10"))
        await harness.engine.endTransaction(two)

        // Iterating or measuring an ended ctx fails the same way.
        for how in ["pairs", "len"] {
            let harness = try Harness("""
            local kept = { how = "\(how)" }
            return { connect = { rule("kept", function(ctx)
              local old = kept.ctx
              kept.ctx = ctx
              if old == nil then return accept(reply(250, "2.0.0", "first")) end
              if kept.how == "pairs" then for k in pairs(old) do end end
              return accept(reply(250, "2.0.0", tostring(#old)))
            end) } }
            """)
            let one = await harness.engine.beginTransaction(first)
            #expect(await harness.engine.evaluate(.connect, in: one).reply.text == "first")
            await harness.engine.endTransaction(one)
            let two = await harness.engine.beginTransaction(second)
            let result = await harness.engine.evaluate(.connect, in: two)
            #expect(result.verdict.kind == .defer_, "\(how)")
            #expect(result.failure?.contains("this ctx belongs to a transaction that has ended") == true, "\(how): \(result.failure ?? "")")
            await harness.engine.endTransaction(two)
        }
    }

    @Test("ctx carries the session, ctx.vars lives across the transaction's stages")
    func contextAndVars() async throws {
        let harness = try Harness("""
        return {
          connect = { action("count", function(ctx) ctx.vars.n = 1 ctx.vars.ip = ctx.client.ip end) },
          helo = { action("count", function(ctx) ctx.vars.n = ctx.vars.n + 1 end) },
          mail = { rule("check", function(ctx)
            assert(ctx.client.ip == "192.0.2.10" and ctx.client.port == 40000 and ctx.client.name == "host.test")
            assert(ctx.server.ip == "192.0.2.1" and ctx.server.name == "mx.example")
            assert(ctx.helo == "host.test")
            assert(ctx.mail_from.address == "alice@mx.test" and ctx.mail_from.local_part == "alice")
            assert(ctx.mail_from.domain == "mx.test")
            assert(ctx.auth == nil and ctx.tls == false)
            ctx.vars.n = ctx.vars.n + 1
          end) },
          rcpt = { rule("vars", function(ctx)
            assert(ctx.rcpt.address == "bob@implicit.test" and ctx.rcpt.domain == "implicit.test")
            assert(#ctx.rcpts == 1 and ctx.domain == "implicit.test")
            return accept(reply(250, "2.1.5", "n=" .. ctx.vars.n .. " ip=" .. ctx.vars.ip))
          end) },
        }
        """)
        let report = await harness.engine.simulate(SimulatedSession(base: defaultSession, recipients: [MailAddress("bob@implicit.test")]))
        let rcpt = try #require(report.steps.first { $0.result.stage == .rcpt })
        #expect(rcpt.result.verdict.description == "accept 250 2.1.5 n=3 ip=192.0.2.10")
        #expect(report.steps.allSatisfy { $0.result.failure == nil })

        // A new transaction starts with empty vars.
        let fresh = try Harness(script(.connect, "if ctx.vars.n == nil then return accept() end"))
        #expect(await fresh.run(.connect).verdict.kind == .accept)
    }

    @Test("ctx.rcpts grows by one address per RCPT: the same list, the earlier recipients the same objects, in order")
    func recipientsGrow() async throws {
        let harness = try Harness("""
        local seen = {}
        local list
        return {
          rcpt = { rule("list", function(ctx)
            local n = #ctx.rcpts
            assert(list == nil or ctx.rcpts == list, "the list made again")
            list = ctx.rcpts
            assert(ctx.rcpts[n] == ctx.rcpt)
            assert(ctx.rcpt.address == "r" .. n .. "@x.test" and ctx.rcpt.local_part == "r" .. n and ctx.rcpt.domain == "x.test")
            for i = 1, n - 1 do
              assert(ctx.rcpts[i].address == "r" .. i .. "@x.test", "recipient " .. i)
              assert(ctx.rcpts[i] == seen[i], "recipient " .. i .. " made again")
            end
            seen[n] = ctx.rcpt
            return accept(reply(250, "2.1.5", "n=" .. n))
          end) },
        }
        """)
        let recipients = (1...4).map { MailAddress("r\($0)@x.test") }
        let report = await harness.engine.simulate(SimulatedSession(base: defaultSession, recipients: recipients))
        let verdicts = report.steps.filter { $0.result.stage == .rcpt }.map(\.result.verdict.description)
        #expect(verdicts == (1...4).map { "accept 250 2.1.5 n=\($0)" }, "\(report.steps.map(\.result))")
    }

    @Test("ctx is read-only except vars")
    func readOnly() async throws {
        let harness = try Harness(script(.connect, "ctx.stage = 'mail'"))
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains("read-only ctx") == true)
    }

    @Test("the null reverse-path")
    func nullSender() async throws {
        let harness = try Harness(script(.mail, "if ctx.mail_from.address == '' and ctx.mail_from.domain == '' then return accept() end"))
        var session = defaultSession
        session.mailFrom = MailAddress("<>")
        #expect(await harness.run(.mail, session).verdict.kind == .accept)
    }

    @Test("the simulator stops where an MTA would")
    func simulatorStops() async throws {
        let harness = try Harness("""
        return {
          helo = { rule("h", function(ctx) if ctx.helo == "bad" then return reject("550 5.7.1 bad helo") end end) },
          rcpt = { rule("r", function(ctx) if ctx.rcpt.local_part == "nobody" then return reject("550 5.1.1 no such user") end end) },
        }
        """)
        var session = defaultSession
        session.helo = "bad"
        let stopped = await harness.engine.simulate(SimulatedSession(base: session, recipients: [MailAddress("a@b.test")]))
        #expect(stopped.stoppedAt == .helo)
        #expect(stopped.steps.map(\.result.stage) == [.connect, .helo])

        let partial = await harness.engine.simulate(SimulatedSession(
            base: defaultSession, recipients: [MailAddress("nobody@b.test"), MailAddress("alice@b.test")]))
        #expect(partial.acceptedRecipients.map(\.address) == ["alice@b.test"])
        #expect(partial.steps.map(\.result.stage) == [.connect, .helo, .mail, .rcpt, .rcpt, .data, .preq])

        let none = await harness.engine.simulate(SimulatedSession(base: defaultSession, recipients: [MailAddress("nobody@b.test")]))
        #expect(none.stoppedAt == .rcpt)
    }
}
