import Foundation
@testable import RuleTesting
import Testing

@Suite("Test file loader")
struct LoaderTests {
    func load(_ text: String) throws -> RuleTestFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-loader-\(UUID())_test.lua").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try RuleTestFileLoader(defaultRulesPath: "rules/main.lua").load(path: path)
    }

    func expectError(_ text: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try self.load(text)
            Issue.record("expected an error containing \(message)", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(message), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("expectations parse into kinds and replies")
    func expectations() {
        #expect(StageExpectation("accept") == .kind(.accept))
        #expect(StageExpectation("defer") == .kind(.defer_))
        #expect(StageExpectation("550 5.7.25") == .reply(code: 550, enhanced: "5.7.25", text: nil))
        #expect(StageExpectation("451 4.4.3 Try later") == .reply(code: 451, enhanced: "4.4.3", text: "Try later"))
        #expect(StageExpectation("not run") == .notRun)
        #expect(StageExpectation("acept") == nil)
        #expect(StageExpectation("550 7.5") == nil)
        #expect(StageExpectation("999 5.7.1") == nil)
    }

    @Test("a test file declares sessions, DNS and faults")
    func parses() throws {
        let file = try self.load("""
        return {
          zone = "$ORIGIN t.\\nhost A 192.0.2.1\\n",
          faults = { ["host.t"] = "timeout", ["slow.t"] = { delay = "50ms" } },
          tests = { {
            name = "n", client_ip = "2001:db8::1", client_port = 25, helo = "h.t", mail_from = "a@b.t",
            rcpt = { "c@d.t", "e@f.t" }, auth = "PLAIN:alice", tls = true, delay = 0.5,
            expect = { connect = "next", rcpt = { "next", "550 5.1.1" } }, vars = { n = 3, ok = true }, logs = { "x" },
          } },
        }
        """)
        let test = try #require(file.cases.first)
        #expect(file.rulesPath == "rules/main.lua")
        #expect(test.records.count == 1)
        #expect(test.faults.map(\.0) == ["host.t", "slow.t"])
        #expect(test.session.base.clientPort == 25 && test.session.base.authUsername == "alice" && test.session.base.tls != nil)
        #expect(test.session.recipients.map(\.address) == ["c@d.t", "e@f.t"])
        #expect(test.delay == .milliseconds(500))
        #expect(test.expectations.first { $0.0 == .rcpt }?.1 == [.kind(.next), .reply(code: 550, enhanced: "5.1.1", text: nil)])
        #expect(test.vars == ["n": "3", "ok": "true"])
    }

    @Test("mistakes in a test file are clear errors")
    func errors() {
        self.expectError("return 1", "must return a table")
        self.expectError("return { tests = {} }", "'tests' must be a non-empty list")
        self.expectError("return { tset = {} }", "unknown key 'tset'")
        self.expectError("return { tests = { { name = 'a', clientip = '1.2.3.4', expect = { connect = 'next' } } } }",
                         "unknown key 'clientip' (did you mean 'client_ip'?)")
        self.expectError("return { tests = { { name = 'a', client_ip = 'nope', expect = { connect = 'next' } } } }",
                         "client_ip 'nope' is not an IP address (nor \"unknown\")")
        self.expectError("return { tests = { { name = 'a', expect = { connect = 'acept' } } } }", "expect.connect: expected")
        self.expectError("return { tests = { { name = 'a' } } }", "'expect' must be a table")
        self.expectError("return { faults = { x = 'explode' }, tests = { { expect = { connect = 'next' } } } }",
                         "faults.x: expected \"timeout\"")
        self.expectError("return { zone = 'garbage here', tests = { { expect = { connect = 'next' } } } }", "zone:")
        self.expectError("return { tests = { { name = 'a', expect = { connect = 'next' } }, { name = 'a', expect = { connect = 'next' } } } }",
                         "two tests are named 'a'")
        self.expectError("while true do end", "instruction budget exceeded")
        self.expectError("os.exit(1)", "attempt to index a nil value")
    }
}
