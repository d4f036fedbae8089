import DNS
import Foundation
@testable import Lint
import Rules
import Testing
import VrulesTestSupport

@Suite("vrules api")
struct APICommandTests {
    /// Every function HostAPI describes, qualified (`dns.lookup`).
    static var describedFunctions: Set<String> {
        let api = HostAPI.current
        return Set(api.functions.map(\.name) + api.tables.flatMap { table in table.functions.map { "\(table.name).\($0.name)" } })
    }

    @Test("--luals defines exactly the functions HostAPI describes, each with its @param and @return lines")
    func luaLanguageServer() throws {
        let output = try CLI.run(["api", "--luals"])
        #expect(output.status == 0)
        #expect(output.stdout.hasPrefix("---@meta"))
        let lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var defined = Set<String>()
        for (index, line) in lines.enumerated() where line.hasPrefix("function ") {
            let name = String(line.dropFirst("function ".count).prefix { $0 != "(" })
            defined.insert(name)
            let api = HostAPI.current
            let parts = name.split(separator: ".").map(String.init)
            let function = parts.count == 1 ? api.functions.first { $0.name == name }
                : api.table(parts[0])?.functions.first { $0.name == parts[1] }
            let described = try #require(function)
            var block: [String] = []
            var cursor = index - 1
            while cursor >= 0, lines[cursor].hasPrefix("---") { block.insert(lines[cursor], at: 0); cursor -= 1 }
            #expect(block.filter { $0.hasPrefix("---@param ") }.count == described.parameters.count)
            #expect(block.filter { $0.hasPrefix("---@return ") }.count == described.returns.count)
        }
        #expect(defined == Self.describedFunctions)
        // The replies constants are the fields of their class.
        let replyFields = Set(HostAPI.current.table("replies")!.fields.map { String($0.prefix { $0 != ":" }) })
        let classStart = try #require(lines.firstIndex(of: "---@class vrules.lib.replies"))
        let fields = lines[(classStart + 1)...].prefix { $0.hasPrefix("---@field ") }
            .map { String($0.dropFirst("---@field ".count).prefix { $0 != " " }) }
        #expect(Set(fields) == replyFields)
        // And the file is valid Lua.
        guard case .compiled = LuaCompiler.compile(output.stdout, chunkName: "vrules.lua") else {
            Issue.record("the definition file does not compile")
            return
        }
    }

    @Test("--luacheck lists exactly the sandbox's globals, and the members of each table")
    func luacheck() throws {
        let output = try CLI.run(["api", "--luacheck"])
        #expect(output.status == 0)
        let api = HostAPI.current
        var globals = Set<String>()
        var members: [String: Set<String>] = [:]
        var table: String?
        for line in output.stdout.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasSuffix("= { fields = {") {
                let name = String(line.prefix { $0 != " " })
                globals.insert(name)
                table = name
                members[name] = []
            } else if line == "} }," {
                table = nil
            } else if line.hasSuffix("= {},") {
                let name = String(line.prefix { $0 != " " })
                if let table { members[table]!.insert(name) } else { globals.insert(name) }
            }
        }
        #expect(globals == api.globalNames)
        for described in api.tables {
            let expected = Set(described.functions.map(\.name) + described.fields.map { String($0.prefix { $0 != ":" }) })
            #expect(members[described.name] == expected, "members of \(described.name)")
        }
        #expect(output.stdout.contains("std = \"vrules\""))
        guard case .compiled = LuaCompiler.compile(output.stdout, chunkName: ".luacheckrc") else {
            Issue.record("the luacheck configuration does not compile")
            return
        }
    }

    @Test("a FILE argument writes the definitions there; exactly one of --luals/--luacheck")
    func toFile() throws {
        let directory = try CLI.scratch([:])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["api", "--luals", "defs/vrules.lua"], in: directory)
        #expect(output.status == 2)
        #expect(output.stderr == "vrules: cannot write defs/vrules.lua: No such file or directory\n")
        let written = try CLI.run(["api", "--luals", "vrules.lua"], in: directory)
        #expect(written.status == 0)
        #expect(written.stdout == "")
        let text = try String(contentsOf: directory.appendingPathComponent("vrules.lua"), encoding: .utf8)
        #expect(text == EditorDefinitions.luaLanguageServer())
        #expect(try CLI.run(["api"]).status == 2)
        #expect(try CLI.run(["api", "--luals", "--luacheck"]).status == 2)
    }
}

@Suite("lint internals")
struct LintInternalsTests {
    @Test("the Lua API reference lists the reply catalogue exactly")
    func docsListTheCatalogue() throws {
        let text = try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/lua-api.md"), encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| `replies.") }.map(String.init)
        #expect(rows == ReplyCatalogue.entries.map { "| `replies.\($0.name)` | \($0.reply) |" })
    }

    @Test("the replies the engine binds are the catalogue the linter judges by")
    func namedRepliesMatchTheEngine() async throws {
        for (name, reply) in ReplyCatalogue.entries {
            let verdict = reply.code / 100 == 4 ? "defer" : reply.code / 100 == 5 ? "reject" : "accept"
            let script = "return { connect = { rule(\"r\", function(ctx) return \(verdict)(replies.\(name)) end) } }"
            let engine = try RuleEngine(source: script, path: "t.lua", resolvers: SingleResolver(ZoneResolver(records: [])))
            let transaction = await engine.beginTransaction(SessionInfo(clientIP: "192.0.2.1"))
            let result = await engine.evaluate(.connect, in: transaction)
            let actual = try #require(result.verdict.reply, "replies.\(name)")
            #expect(actual.code == reply.code && actual.enhanced == reply.enhanced && actual.text == reply.text, "replies.\(name)")
        }
        #expect(Set(ReplyCatalogue.byName.keys) ==
                Set(HostAPI.current.table("replies")!.fields.map { String($0.prefix { $0 != ":" }) }))
    }

    @Test("every truncation of a dump is a typed error, never a crash")
    func truncatedDumps() throws {
        let source = try String(contentsOf: CLI.packageRoot.appendingPathComponent("rules/main.lua"), encoding: .utf8)
        guard case .compiled = LuaCompiler.compile(source, chunkName: "main.lua") else {
            Issue.record("rules/main.lua does not compile")
            return
        }
        let bytes = try #require(Self.dump(source))
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: BinaryChunkError.self) { try BinaryChunk(bytes: Array(bytes.prefix(length))) }
        }
        var wrongVersion = bytes
        wrongVersion[4] = 0x53
        #expect(throws: BinaryChunkError.badHeader("version 53, expected 54")) { try BinaryChunk(bytes: wrongVersion) }
        let chunk = try BinaryChunk(bytes: bytes)
        #expect(chunk.main.isMainChunk)
        #expect(chunk.main.upvalues.first?.name == "_ENV")
        #expect(chunk.main.lines.last == source.split(separator: "\n", omittingEmptySubsequences: false).count - 1)
    }

    /// The raw dump, through the same compiler the linter uses.
    static func dump(_ source: String) -> [UInt8]? {
        LuaCompiler.dumpBytes(source, chunkName: "main.lua")
    }

    @Test("lines past 127 lines of gap use abslineinfo and still resolve")
    func absoluteLines() throws {
        let source = "local x = 1\n" + String(repeating: "\n", count: 300) + "return acept\n"
        let bytes = try #require(Self.dump(source))
        let chunk = try BinaryChunk(bytes: bytes)
        var analyzer = BytecodeAnalyzer(scope: GlobalScope(api: .current), checksLoadTimeCalls: true, checksRuleAPI: true)
        analyzer.analyze(chunk)
        #expect(analyzer.findings.map(\.line) == [302])
    }
}
