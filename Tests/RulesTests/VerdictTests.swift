import Rules
import Testing

@Suite("Verdicts and replies")
struct VerdictTests {
    @Test("each verdict constructor and its reply", arguments: [
        ("return accept()", "accept", nil as String?),
        ("return accept(reply(250, '2.1.0', 'fine'))", "accept", "250 2.1.0 fine"),
        ("return accept('250 2.0.0 Welcome')", "accept", "250 2.0.0 Welcome"),
        ("return next()", "next", nil),
        ("return", "next", nil),
        ("return nil", "next", nil),
        ("return defer()", "defer", "451 4.4.3 Directory server failure, try again later"),
        ("return defer('421 4.7.0 Try later')", "defer", "421 4.7.0 Try later"),
        ("return defer(replies.unable_to_route_temp)", "defer", "451 4.4.4 Unable to route, try again later"),
        ("return reject()", "reject", "550 5.7.25 Reverse DNS validation failed"),
        ("return reject(replies.null_mx)", "reject", "550 5.7.27 Sender address has null MX"),
        ("return reject(replies.rcpt_null_mx)", "reject", "556 5.1.10 Recipient address has null MX"),
        ("return reject(replies.unable_to_route)", "reject", "550 5.4.4 Unable to route"),
        ("return reject(replies.rdns_failed)", "reject", "550 5.7.25 Reverse DNS validation failed"),
        ("return defer(replies.directory_failure)", "defer", "451 4.4.3 Directory server failure, try again later"),
        ("return defer(replies.local_error)", "defer", "451 4.3.0 Local error in processing, try again later"),
        ("return reject(reply(554, '5.7.1', 'No'))", "reject", "554 5.7.1 No"),
        ("return reject('550 5.7.1')", "reject", "550 5.7.1"),
    ])
    func verdict(body: String, kind: String, reply: String?) async throws {
        let harness = try Harness(script(.connect, body))
        let result = await harness.run(.connect)
        #expect(result.verdict.kind.rawValue == kind)
        #expect(result.verdict.reply?.description == reply)
        #expect(result.failure == nil)
    }

    @Test("the first deciding rule ends the stage; next() goes on")
    func ordering() async throws {
        let harness = try Harness("""
        return { connect = {
          rule("one", function() return next() end),
          rule("two", function() return reject("550 5.7.1 second") end),
          rule("three", function() return accept() end),
        } }
        """)
        let result = await harness.run(.connect)
        #expect(result.verdict.description == "reject 550 5.7.1 second")
        #expect(result.decidedBy == "two")
        #expect(!result.trace.contains(.rule(name: "three", kind: "rule", decision: "accept")))
    }

    @Test("reply validation errors end the stage in 451 4.3.0 with the script position", arguments: [
        ("return reject(reply(451, '4.4.3', 'x'))", "reject() takes a 5xx reply"),
        ("return defer('550 5.7.1 no')", "defer() takes a 4xx reply"),
        ("return accept('550 5.7.1 no')", "accept() takes a 2xx or 3xx reply"),
        ("return reject(reply(550, '4.4.3', 'x'))", "does not match enhanced status code"),
        ("return defer(reply(451, '5.7.1', 'x'))", "does not match enhanced status code"),
        ("return reject(reply(550, '5.7.1', 'a\\r\\nRCPT TO:<x>'))", "may not contain CR, LF or NUL"),
        ("return reject(reply(550, '5.7.1', 'a\\nb'))", "may not contain CR, LF or NUL"),
        ("return reject(reply(550, '5.7.1', 'a\\0b'))", "may not contain CR, LF or NUL"),
        ("return reject('550 5.7.1 a\\rb')", "may not contain CR, LF or NUL"),
        ("return reject(reply(700, '5.7.1', 'x'))", "reply code must be an integer from 200 to 599"),
        ("return reject(reply(550.5, '5.7.1', 'x'))", "reply code must be an integer"),
        ("return reject(reply(550, '5.7', 'x'))", "invalid enhanced status code"),
        ("return reject(reply(550, '3.7.1', 'x'))", "invalid enhanced status code"),
        ("return reject('five hundred')", "invalid reply"),
        ("return reject(42)", "expected a reply"),
        ("return true", "returned a boolean"),
        ("return 'accept'", "returned a string"),
    ])
    func replyValidation(body: String, message: String) async throws {
        let harness = try Harness(script(.connect, body))
        let result = await harness.run(.connect)
        #expect(result.verdict.description == "defer 451 4.3.0 Local error in processing, try again later")
        let failure = try #require(result.failure)
        #expect(failure.contains(message), "\(failure)")
        #expect(failure.contains("test.lua:"), "\(failure)")
    }

    @Test("a verdict or reply object cannot be tampered with")
    func tamperProof() async throws {
        let harness = try Harness(script(.connect, "local v = reject() v.kind = 'accept' return v"))
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains("read-only verdict") == true)
        let second = try Harness(script(.connect, "replies.null_mx.code = 250 return accept()"))
        #expect(await second.run(.connect).failure?.contains("read-only reply") == true)
    }

    @Test("an action that returns a verdict is an error")
    func actionReturningVerdict() async throws {
        let harness = try Harness("""
        return { connect = {
          action("sneaky", function() return reject() end),
          rule("after", function() return accept() end),
        } }
        """)
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.decidedBy == "sneaky")
        #expect(result.failure?.contains("actions cannot decide") == true)
        let fine = try Harness("""
        return { connect = { action("logs", function() log.info("hello") end), rule("r", function() return accept() end) } }
        """)
        let ok = await fine.run(.connect)
        #expect(ok.verdict.kind == .accept)
        #expect(ok.trace.contains(.log(level: "info", rule: "logs", message: "hello")))
    }

    @Test("next(t) still iterates tables")
    func nextCompatibility() async throws {
        let harness = try Harness(script(.connect, "if next({}) == nil and next({1}) == 1 then return accept() end return reject()"))
        #expect(await harness.run(.connect).verdict.kind == .accept)
    }
}
