/// TOML 1.0 (https://toml.io/en/v1.0.0), parsed over UTF-8 bytes.
public enum TOML {
    /// How deep tables and arrays may nest. Configuration files need a handful of levels;
    /// the bound keeps recursion (parsing, building, comparing) safe for any input.
    public static let maximumDepth = 100

    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        try self.parse(Array(text.utf8))
    }

    public static func parse(_ bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

struct TOMLParser {
    var scanner: TOMLScanner
    private let root: TOMLTableBuilder

    init(bytes: [UInt8]) {
        self.scanner = TOMLScanner(bytes: bytes)
        self.root = TOMLTableBuilder(origin: .defined, position: TOMLPosition(line: 1, column: 1), depth: 0)
    }

    // MARK: - Document

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        try Self.validateUTF8(self.scanner.bytes)
        _ = self.scanner.consume("\u{FEFF}")
        var current = self.root
        while true {
            self.scanner.skipBlanks()
            guard let byte = self.scanner.peek() else { break }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try self.expectLineEnd(after: "")
            case UInt8(ascii: "["):
                current = try self.parseHeader()
                try self.expectLineEnd(after: " after a table header")
            default:
                try self.parseKeyValue(into: current, depth: current.depth)
                try self.expectLineEnd(after: " after a value")
            }
        }
        return self.root.build()
    }

    /// TOML documents are UTF-8; anything else is refused where it starts.
    private static func validateUTF8(_ bytes: [UInt8]) throws(TOMLError) {
        let decoded = Array(String(decoding: bytes, as: UTF8.self).utf8)
        guard decoded != bytes else { return }
        var index = 0
        while index < bytes.count, index < decoded.count, bytes[index] == decoded[index] { index += 1 }
        var scanner = TOMLScanner(bytes: Array(bytes[..<index]))
        scanner.advance(by: index)
        throw scanner.error("the file is not valid UTF-8")
    }

    /// Blanks, an optional comment, then a newline or the end of the file.
    private mutating func expectLineEnd(after context: String) throws(TOMLError) {
        self.scanner.skipBlanks()
        if self.scanner.peek(is: UInt8(ascii: "#")) { try self.skipComment() }
        guard let byte = self.scanner.peek() else { return }
        if byte == UInt8(ascii: "\n") {
            self.scanner.advance()
        } else if byte == UInt8(ascii: "\r"), self.scanner.peek(is: UInt8(ascii: "\n"), 1) {
            self.scanner.advance(by: 2)
        } else {
            throw self.scanner.error("expected the end of the line\(context), found \(self.scanner.describeNext())")
        }
    }

    private mutating func skipComment() throws(TOMLError) {
        self.scanner.advance()
        while let byte = self.scanner.peek(), byte != UInt8(ascii: "\n") {
            if byte == UInt8(ascii: "\r"), self.scanner.peek(is: UInt8(ascii: "\n"), 1) { return }
            if Self.isControl(byte) { throw self.scanner.error("control character \(self.scanner.describeNext()) in a comment") }
            self.scanner.advance()
        }
    }

    /// Control characters other than tab, which TOML allows in no comment or string.
    static func isControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F
    }

    // MARK: - Tables

    private mutating func parseHeader() throws(TOMLError) -> TOMLTableBuilder {
        let start = self.scanner.position
        self.scanner.advance()
        let isArray = self.scanner.peek(is: UInt8(ascii: "["))
        if isArray { self.scanner.advance() }
        self.scanner.skipBlanks()
        let keys = try self.parseKey()
        self.scanner.skipBlanks()
        guard self.scanner.peek(is: UInt8(ascii: "]")) else {
            throw self.scanner.error("expected ']' to close the table header, found \(self.scanner.describeNext())")
        }
        self.scanner.advance()
        if isArray {
            guard self.scanner.peek(is: UInt8(ascii: "]")) else {
                throw self.scanner.error("expected ']]' to close the array-of-tables header, found \(self.scanner.describeNext())")
            }
            self.scanner.advance()
        }
        guard keys.count + 1 <= TOML.maximumDepth else { throw self.scanner.error("tables nested too deeply", at: start) }

        var table = self.root
        for (key, position) in keys.dropLast() {
            switch table[key] {
            case nil:
                let implied = TOMLTableBuilder(origin: .implied, position: position, depth: table.depth + 1)
                table.set(key, .table(implied), keyPosition: position)
                table = implied
            case .table(let existing):
                table = existing
            case .tableArray(let tables, _):
                guard let last = tables.last else { throw self.scanner.error("empty array of tables \(TOMLText.key(key))", at: position) }
                table = last
            case .value(let value):
                throw self.scanner.error("\(TOMLText.key(key)) is already \(value.typeName), not a table that can hold [\(Self.render(keys))]", at: position)
            }
        }
        let (last, position) = keys[keys.count - 1]
        let name = isArray ? "[[\(Self.render(keys))]]" : "[\(Self.render(keys))]"
        switch table[last] {
        case nil:
            let defined = TOMLTableBuilder(origin: .defined, position: position, depth: table.depth + 1)
            if isArray {
                table.set(last, .tableArray([defined], position: start), keyPosition: position)
            } else {
                table.set(last, .table(defined), keyPosition: position)
            }
            return defined
        case .tableArray where isArray:
            let defined = TOMLTableBuilder(origin: .defined, position: position, depth: table.depth + 1)
            table.appendToTableArray(last, defined)
            return defined
        case .table(let existing) where !isArray && existing.origin == .implied:
            existing.origin = .defined
            return existing
        case .table(let existing):
            let how = existing.origin == .dotted ? "by dotted keys" : "before"
            throw self.scanner.error("\(name) redefines a table defined \(how)", at: position)
        case .tableArray:
            throw self.scanner.error("\(name) redefines an array of tables", at: position)
        case .value(let value):
            throw self.scanner.error("\(name) redefines a key that is already \(value.typeName)", at: position)
        }
    }

    private static func render(_ keys: [(String, TOMLPosition)]) -> String {
        keys.map { key, _ in TOMLText.key(key) }.joined(separator: ".")
    }

    // MARK: - Keys

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// A dotted key: simple keys separated by dots, blanks allowed around the dots.
    private mutating func parseKey() throws(TOMLError) -> [(String, TOMLPosition)] {
        var keys = [try self.parseSimpleKey()]
        while true {
            self.scanner.skipBlanks()
            guard self.scanner.peek(is: UInt8(ascii: ".")) else { return keys }
            self.scanner.advance()
            self.scanner.skipBlanks()
            keys.append(try self.parseSimpleKey())
            guard keys.count <= TOML.maximumDepth else { throw self.scanner.error("key has too many parts") }
        }
    }

    private mutating func parseSimpleKey() throws(TOMLError) -> (String, TOMLPosition) {
        let position = self.scanner.position
        switch self.scanner.peek() {
        case UInt8(ascii: "\"")?:
            if self.scanner.peek(is: UInt8(ascii: "\""), 1) && self.scanner.peek(is: UInt8(ascii: "\""), 2) {
                throw self.scanner.error("a multi-line string cannot be a key")
            }
            return (try self.parseBasicString(), position)
        case UInt8(ascii: "'")?:
            if self.scanner.peek(is: UInt8(ascii: "'"), 1) && self.scanner.peek(is: UInt8(ascii: "'"), 2) {
                throw self.scanner.error("a multi-line string cannot be a key")
            }
            return (try self.parseLiteralString(), position)
        default:
            let start = self.scanner.offset
            while let byte = self.scanner.peek(), Self.isBareKeyByte(byte) { self.scanner.advance() }
            guard self.scanner.offset > start else {
                throw self.scanner.error("expected a key, found \(self.scanner.describeNext())")
            }
            return (String(decoding: self.scanner.bytes[start..<self.scanner.offset], as: UTF8.self), position)
        }
    }

    /// `key = value` into `table` (the current section, or an inline table).
    private mutating func parseKeyValue(into table: TOMLTableBuilder, depth: Int) throws(TOMLError) {
        let keys = try self.parseKey()
        self.scanner.skipBlanks()
        guard self.scanner.peek(is: UInt8(ascii: "=")) else {
            throw self.scanner.error("expected '=' after the key, found \(self.scanner.describeNext())")
        }
        self.scanner.advance()
        self.scanner.skipBlanks()
        guard table.depth + keys.count <= TOML.maximumDepth else { throw self.scanner.error("tables nested too deeply") }

        var target = table
        for (key, position) in keys.dropLast() {
            switch target[key] {
            case nil:
                let dotted = TOMLTableBuilder(origin: .dotted, position: position, depth: target.depth + 1)
                target.set(key, .table(dotted), keyPosition: position)
                target = dotted
            case .table(let existing) where existing.origin == .dotted:
                target = existing
            case .table, .tableArray:
                throw self.scanner.error("dotted key \(TOMLText.key(key)) cannot add to a table defined elsewhere", at: position)
            case .value(let value):
                throw self.scanner.error("\(TOMLText.key(key)) is already \(value.typeName), not a table", at: position)
            }
        }
        let (last, position) = keys[keys.count - 1]
        guard target[last] == nil else {
            throw self.scanner.error("key \(TOMLText.key(last)) is defined twice", at: position)
        }
        let value = try self.parseValue(depth: target.depth + 1)
        target.set(last, .value(value), keyPosition: position)
    }

    // MARK: - Values

    private mutating func parseValue(depth: Int) throws(TOMLError) -> TOMLValue {
        let position = self.scanner.position
        guard depth <= TOML.maximumDepth else { throw self.scanner.error("values nested too deeply") }
        guard let byte = self.scanner.peek() else { throw self.scanner.error("expected a value, found end of file") }
        switch byte {
        case UInt8(ascii: "\""):
            if self.scanner.peek(is: UInt8(ascii: "\""), 1) && self.scanner.peek(is: UInt8(ascii: "\""), 2) {
                return TOMLValue(.string(try self.parseMultilineBasicString()), at: position)
            }
            return TOMLValue(.string(try self.parseBasicString()), at: position)
        case UInt8(ascii: "'"):
            if self.scanner.peek(is: UInt8(ascii: "'"), 1) && self.scanner.peek(is: UInt8(ascii: "'"), 2) {
                return TOMLValue(.string(try self.parseMultilineLiteralString()), at: position)
            }
            return TOMLValue(.string(try self.parseLiteralString()), at: position)
        case UInt8(ascii: "t"):
            guard self.scanner.consume("true") else { throw self.scanner.error("expected a value, found \(self.scanner.describeNext())") }
            return TOMLValue(.boolean(true), at: position)
        case UInt8(ascii: "f"):
            guard self.scanner.consume("false") else { throw self.scanner.error("expected a value, found \(self.scanner.describeNext())") }
            return TOMLValue(.boolean(false), at: position)
        case UInt8(ascii: "["):
            return try self.parseArray(depth: depth)
        case UInt8(ascii: "{"):
            return try self.parseInlineTable(depth: depth)
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            if self.scanner.peek(is: UInt8(ascii: "-"), 4), (0..<4).allSatisfy({ Self.isDigit(self.scanner.peek($0)) }) {
                return try self.parseDateTime()
            }
            if self.scanner.peek(is: UInt8(ascii: ":"), 2), Self.isDigit(self.scanner.peek(1)) {
                return try self.parseDateTime()
            }
            return try self.parseNumber()
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "i"), UInt8(ascii: "n"):
            return try self.parseNumber()
        default:
            throw self.scanner.error("expected a value, found \(self.scanner.describeNext())")
        }
    }

    static func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Blanks, newlines and comments between array elements.
    private mutating func skipArraySpace() throws(TOMLError) {
        while let byte = self.scanner.peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"):
                self.scanner.advance()
            case UInt8(ascii: "\r"):
                guard self.scanner.peek(is: UInt8(ascii: "\n"), 1) else { throw self.scanner.error("a carriage return must be followed by a newline") }
                self.scanner.advance(by: 2)
            case UInt8(ascii: "#"):
                try self.skipComment()
            default:
                return
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(TOMLError) -> TOMLValue {
        let position = self.scanner.position
        self.scanner.advance()
        var elements: [TOMLValue] = []
        while true {
            try self.skipArraySpace()
            if self.scanner.peek(is: UInt8(ascii: "]")) {
                self.scanner.advance()
                return TOMLValue(.array(elements), at: position)
            }
            elements.append(try self.parseValue(depth: depth + 1))
            try self.skipArraySpace()
            switch self.scanner.peek() {
            case UInt8(ascii: ",")?:
                self.scanner.advance()
            case UInt8(ascii: "]")?:
                self.scanner.advance()
                return TOMLValue(.array(elements), at: position)
            default:
                throw self.scanner.error("expected ',' or ']' in the array, found \(self.scanner.describeNext())")
            }
        }
    }

    /// `{ a = 1, b.c = 2 }`: on one line, no trailing comma, sealed once closed.
    private mutating func parseInlineTable(depth: Int) throws(TOMLError) -> TOMLValue {
        let position = self.scanner.position
        self.scanner.advance()
        let table = TOMLTableBuilder(origin: .defined, position: position, depth: depth)
        self.scanner.skipBlanks()
        if self.scanner.peek(is: UInt8(ascii: "}")) {
            self.scanner.advance()
            return TOMLValue(.table(table.build()), at: position)
        }
        while true {
            self.scanner.skipBlanks()
            try self.parseKeyValue(into: table, depth: depth)
            self.scanner.skipBlanks()
            switch self.scanner.peek() {
            case UInt8(ascii: ",")?:
                self.scanner.advance()
                self.scanner.skipBlanks()
                if self.scanner.peek(is: UInt8(ascii: "}")) { throw self.scanner.error("trailing comma in an inline table") }
            case UInt8(ascii: "}")?:
                self.scanner.advance()
                return TOMLValue(.table(table.build()), at: position)
            default:
                throw self.scanner.error("expected ',' or '}' in the inline table, found \(self.scanner.describeNext())")
            }
        }
    }
}
