import Foundation
import Rules
import Testing

@Suite("Loading scripts")
struct LoadTests {
    @Test("syntax errors carry path:line")
    func syntaxError() {
        expectLoadError("return {\n connect = {\n rule('x', function() return accept( end) } }", contains: "test.lua:3:")
    }

    @Test("unknown stage with the nearest spelling")
    func unknownStage() {
        expectLoadError("return { rpct = {} }", contains: "unknown stage 'rpct' (did you mean 'rcpt'?)")
        expectLoadError("return { conect = {} }", contains: "did you mean 'connect'?")
    }

    @Test("malformed stage tables")
    func malformed() {
        expectLoadError("return 42", contains: "must return a table of stages")
        expectLoadError("return { connect = 1 }", contains: "stage 'connect' must be a list")
        expectLoadError("return { connect = { function() end } }", contains: "is a function, not a rule(...)")
        expectLoadError("return { connect = { rule('x', 42) } }", contains: "test.lua:1: rule 'x': expected a function, got number")
        expectLoadError("return { connect = { rule(nil, function() end) } }", contains: "name must be a non-empty string")
        expectLoadError("return { connect = { action(string.rep('n', 201), function() end) } }",
                        contains: "test.lua:1: action(name, fn): name longer than 200 bytes (201)")
        expectLoadError("return { connect = { rule('a', function() end), rule('a', function() end) } }",
                        contains: "duplicate rule name 'a' in stage 'connect'")
        expectLoadError("error('boom')", contains: "test.lua:1: boom")
        // A huge error message is cut as a log message is.
        expectLoadError("error(string.rep('y', 100000))", contains: "yyy… (95916 bytes more)")
    }

    @Test("a rule name of 200 bytes loads")
    func longestName() throws {
        _ = try Harness("return { connect = { rule(string.rep('n', 200), function() end) } }")
    }

    @Test("DNS calls at load time are refused")
    func dnsAtLoad() {
        expectLoadError("local a = dns.lookup('host.test') return {}", contains: "may not be called while the script loads")
    }

    @Test("a load-time infinite loop is stopped")
    func loadLoop() throws {
        do {
            _ = try Harness("while true do end return {}", limits: RuleLimits(loadInstructions: 1_000_000))
            Issue.record("expected a load error")
        } catch {
            #expect("\(error)".contains("instruction budget exceeded"))
        }
    }

    @Test("globals defined at load time are readable by rules, not writable")
    func loadTimeGlobals() async throws {
        let harness = try Harness("""
        LIMIT = 3
        function helper() return LIMIT end
        return { connect = { rule("r", function() if helper() == 3 then return accept() end end) },
                 helo = { rule("w", function() LIMIT = 4 end) } }
        """)
        #expect(await harness.run(.connect).verdict.kind == .accept)
        let write = await harness.run(.helo)
        #expect(write.failure?.contains("attempt to assign to global 'LIMIT'") == true)
        #expect(await harness.run(.connect).verdict.kind == .accept)
    }

    @Test("require loads modules from the rules directory only")
    func requireConfined() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-require-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory + "/lib", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "return { answer = 42 }".write(toFile: directory + "/lib/util.lua", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape.lua", withDestinationPath: "/etc/passwd")
        let ok = try Harness(script(.connect, "if require('lib.util').answer == 42 then return accept() end"),
                             rulesDirectory: directory)
        #expect(await ok.run(.connect).verdict.kind == .accept)
        for (name, message) in [("/etc/passwd", "invalid module name"), ("../x", "invalid module name"),
                                ("escape", "outside the rules directory"), ("missing", "not found")] {
            let harness = try Harness(script(.connect, "require('\(name)') return accept()"), rulesDirectory: directory)
            let result = await harness.run(.connect)
            #expect(result.verdict.reply == .localError)
            #expect(result.failure?.contains(message) == true, "\(String(describing: result.failure))")
        }
    }

    /// A cycle recursed until the memory cap, and was reported as "memory limit exceeded".
    @Test("a module required while it loads is a cycle, named as one; a module that failed can be required again")
    func requireCycle() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-require-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory + "/lib", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let modules = [
            "a": "local b = require 'lib.b'\nreturn {}",
            "b": "local a = require 'lib.a'\nreturn {}",
            "self": "return require 'lib.self'",
            "flaky": "error('not yet')",
        ]
        for (name, source) in modules {
            try source.write(toFile: directory + "/lib/\(name).lua", atomically: true, encoding: .utf8)
        }
        do {
            _ = try Harness("require 'lib.a'\nreturn {}", rulesDirectory: directory)
            Issue.record("a cycle loaded")
        } catch {
            #expect("\(error)" == "lib/b.lua:1: require: 'lib.a' is required while it loads (lib.a -> lib.b -> lib.a)"
                || "\(error)".hasSuffix("lib/b.lua:1: require: 'lib.a' is required while it loads (lib.a -> lib.b -> lib.a)"),
                    "\(error)")
        }
        let harness = try Harness(script(.connect, "require('lib.self') return accept()"), rulesDirectory: directory)
        let result = await harness.run(.connect)
        #expect(result.verdict.reply == .localError)
        #expect(result.failure?.contains("require: 'lib.self' is required while it loads (lib.self -> lib.self)") == true,
                "\(String(describing: result.failure))")
        // A module whose load failed is not left "loading": asked again, it fails for its own reason.
        let again = try Harness(script(.connect, "pcall(require, 'lib.flaky') require('lib.flaky') return accept()"),
                                rulesDirectory: directory)
        let second = await again.run(.connect)
        #expect(second.failure?.contains("lib/flaky.lua:1: not yet") == true, "\(String(describing: second.failure))")
    }
}

@Suite("Host API description")
struct HostAPITests {
    @Test("the sandbox binds exactly the globals and members HostAPI describes")
    func sandboxMatchesDescription() async throws {
        let harness = try Harness("return {}")
        let bound = await harness.engine.boundGlobals()
        let api = HostAPI.current
        #expect(Set(bound.keys) == api.globalNames)
        for table in api.tables {
            let described = Set(table.functions.map(\.name) + table.fields.map { String($0.split(separator: ":")[0]) })
            #expect(bound[table.name] == described, "\(table.name)")
        }
    }
}
