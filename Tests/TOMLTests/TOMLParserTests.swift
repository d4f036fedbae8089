import Testing
@testable import TOML

@Suite("TOML parser")
struct TOMLParserTests {
    func error(_ text: String) -> TOMLError? {
        do {
            _ = try TOML.parse(text)
            Issue.record("accepted: \(text)")
            return nil
        } catch {
            return error
        }
    }

    @Test("the table header that aborted toml++ is a syntax error with its position")
    func emptyKeyInHeader() {
        for text in ["[..server.dns.options]\n", "[server..dns]\n", "[server.dns.]\n", "[[..a]]\n", "a..b = 1\n"] {
            let error = self.error(text)
            #expect(error?.position.line == 1, "\(text)")
            #expect(error?.reason.hasPrefix("expected a key") == true, "\(text): \(String(describing: error))")
        }
    }

    @Test("values keep their positions; keys keep theirs")
    func positions() throws {
        let table = try TOML.parse("""
            # comment
            [server.dns]
            type = "custom"
              servers = ["127.0.0.1:53", "[::1]:53"]
            [limits]
            memory = "64MiB"
            """)
        let dns = try #require(table["server"]?.table?["dns"]?.table)
        #expect(table.entry("server")?.keyPosition == TOMLPosition(line: 2, column: 2))
        #expect(dns.entry("type")?.keyPosition == TOMLPosition(line: 3, column: 1))
        #expect(dns["type"]?.position == TOMLPosition(line: 3, column: 8))
        #expect(dns.entry("servers")?.keyPosition == TOMLPosition(line: 4, column: 3))
        #expect(dns["servers"]?.array?[1].position == TOMLPosition(line: 4, column: 30))
        #expect(dns["servers"]?.array?.compactMap(\.string) == ["127.0.0.1:53", "[::1]:53"])
        #expect(table["limits"]?.table?["memory"]?.string == "64MiB")
    }

    @Test("columns count characters, not bytes")
    func columns() {
        let error = self.error("name = \"bücher\" x\n")
        #expect(error?.position == TOMLPosition(line: 1, column: 17))
    }

    @Test("hostile inputs are errors, not crashes: deep nesting, long keys, bad bytes")
    func hostile() {
        let deepArray = String(repeating: "[", count: 100_000)
        #expect(self.error("a = \(deepArray)")?.reason == "values nested too deeply")
        let deepInline = String(repeating: "{a=", count: 5_000)
        #expect(self.error("a = \(deepInline)")?.reason.contains("nested too deeply") == true)
        let longHeader = "[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]"
        #expect(self.error(longHeader) != nil)
        #expect(self.error("a = \"\u{0}\"") != nil)
        #expect(throws: TOMLError.self) { try TOML.parse([0x61, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22]) }
        #expect(self.error("a = 99999999999999999999")?.reason.contains("64 bits") == true)
        #expect(self.error("a = \"\\uD800\"") != nil)
        #expect(self.error("a = 1\na = 2")?.position == TOMLPosition(line: 2, column: 1))
        // Keys echoed in errors are escaped: no raw newline or escape sequence reaches a log.
        #expect(self.error("\"a\\nb\\u001B\" = 1\n\"a\\nb\\u001B\" = 2\n")?.reason == "key \"a\\nb\\u001B\" is defined twice")
        #expect(self.error("a = 1\(String(repeating: "0", count: 10_000))x\n")?.reason.count ?? 0 < 200)
    }

    @Test("redefinitions follow TOML 1.0: implied tables may be defined once, dotted and inline tables are sealed")
    func redefinitions() throws {
        _ = try TOML.parse("[a.b.c]\n[a]\nx = 1\n")
        _ = try TOML.parse("[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true\n")
        #expect(self.error("[a]\n[a]\n") != nil)
        #expect(self.error("[fruit]\napple.color = \"red\"\n[fruit.apple]\n") != nil)
        #expect(self.error("a = {b = 1}\n[a.c]\n") != nil)
        #expect(self.error("[a.b.c]\n[a]\nb.c.d = 1\n") != nil)
        #expect(self.error("a = [1]\n[[a]]\n") != nil)
    }
}

@Suite("TOML table builder")
struct TOMLTableBuilderTests {
    /// Each `[[header]]` appends a table to its array. Appended while the dictionary of
    /// children still held the array, the whole array was copied each time: 40,000 headers
    /// took 23 s to read. In place, its storage moves only when its capacity grows.
    @Test("a [[header]] appends to its array of tables in place")
    func tableArrayAppendsInPlace() {
        let document = TOMLTableBuilder(origin: .defined, position: TOMLPosition(line: 1, column: 1), depth: 0)
        func first() -> UnsafePointer<TOMLTableBuilder>? {
            guard case .tableArray(let tables, _)? = document["x"] else { return nil }
            return tables.withUnsafeBufferPointer { $0.baseAddress }
        }
        document.set("x", .tableArray([], position: TOMLPosition(line: 1, column: 1)), keyPosition: TOMLPosition(line: 1, column: 1))
        var moves = 0
        var storage = first()
        for line in 1...1_000 {
            document.appendToTableArray("x", TOMLTableBuilder(origin: .defined, position: TOMLPosition(line: line, column: 1), depth: 1))
            if first() != storage { moves += 1 }
            storage = first()
        }
        #expect(moves < 20, "the array of tables moved on \(moves) of 1,000 appends")
        guard case .tableArray(let tables, _)? = document["x"] else { Issue.record("no array of tables"); return }
        #expect(tables.count == 1_000)
    }
}
