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
}
