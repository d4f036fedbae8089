extension TOMLParser {
    private static let quote = UInt8(ascii: "\"")
    private static let apostrophe = UInt8(ascii: "'")
    private static let backslash = UInt8(ascii: "\\")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    /// `"..."` with escapes, on one line.
    mutating func parseBasicString() throws(TOMLError) -> String {
        let start = self.scanner.position
        self.scanner.advance()
        var bytes: [UInt8] = []
        while true {
            guard let byte = self.scanner.peek() else { throw self.scanner.error("unterminated string (opened at \(start))") }
            switch byte {
            case Self.quote:
                self.scanner.advance()
                return String(decoding: bytes, as: UTF8.self)
            case Self.backslash:
                try self.parseEscape(into: &bytes)
            case Self.newline, Self.carriageReturn:
                throw self.scanner.error("unterminated string (opened at \(start)): a newline is not allowed in a single-line string")
            default:
                if Self.isControl(byte) { throw self.scanner.error("control character \(self.scanner.describeNext()) in a string") }
                bytes.append(byte)
                self.scanner.advance()
            }
        }
    }

    /// `'...'`: no escapes, on one line.
    mutating func parseLiteralString() throws(TOMLError) -> String {
        let start = self.scanner.position
        self.scanner.advance()
        var bytes: [UInt8] = []
        while true {
            guard let byte = self.scanner.peek() else { throw self.scanner.error("unterminated string (opened at \(start))") }
            switch byte {
            case Self.apostrophe:
                self.scanner.advance()
                return String(decoding: bytes, as: UTF8.self)
            case Self.newline, Self.carriageReturn:
                throw self.scanner.error("unterminated string (opened at \(start)): a newline is not allowed in a single-line string")
            default:
                if Self.isControl(byte) { throw self.scanner.error("control character \(self.scanner.describeNext()) in a string") }
                bytes.append(byte)
                self.scanner.advance()
            }
        }
    }

    /// `"""..."""`: escapes, newlines, a backslash at the end of a line joining lines, and
    /// one or two quotes allowed right before the closing three.
    mutating func parseMultilineBasicString() throws(TOMLError) -> String {
        try self.parseMultiline(delimiter: Self.quote, escapes: true)
    }

    /// `'''...'''`: newlines, no escapes.
    mutating func parseMultilineLiteralString() throws(TOMLError) -> String {
        try self.parseMultiline(delimiter: Self.apostrophe, escapes: false)
    }

    private mutating func parseMultiline(delimiter: UInt8, escapes: Bool) throws(TOMLError) -> String {
        let start = self.scanner.position
        self.scanner.advance(by: 3)
        // A newline right after the opening delimiter is not part of the string.
        if self.scanner.peek(is: Self.newline) {
            self.scanner.advance()
        } else if self.scanner.peek(is: Self.carriageReturn), self.scanner.peek(is: Self.newline, 1) {
            self.scanner.advance(by: 2)
        }
        var bytes: [UInt8] = []
        while true {
            guard let byte = self.scanner.peek() else { throw self.scanner.error("unterminated multi-line string (opened at \(start))") }
            switch byte {
            case delimiter:
                var count = 0
                while self.scanner.peek(is: delimiter, count) { count += 1 }
                if count < 3 {
                    bytes.append(contentsOf: repeatElement(delimiter, count: count))
                    self.scanner.advance(by: count)
                    continue
                }
                guard count <= 5 else { throw self.scanner.error("too many quotes at the end of a multi-line string") }
                bytes.append(contentsOf: repeatElement(delimiter, count: count - 3))
                self.scanner.advance(by: count)
                return String(decoding: bytes, as: UTF8.self)
            case Self.backslash where escapes:
                if try self.skipLineEndingBackslash() { continue }
                try self.parseEscape(into: &bytes)
            case Self.newline:
                bytes.append(byte)
                self.scanner.advance()
            case Self.carriageReturn:
                guard self.scanner.peek(is: Self.newline, 1) else { throw self.scanner.error("a carriage return must be followed by a newline") }
                bytes.append(contentsOf: [Self.carriageReturn, Self.newline])
                self.scanner.advance(by: 2)
            default:
                if Self.isControl(byte) { throw self.scanner.error("control character \(self.scanner.describeNext()) in a string") }
                bytes.append(byte)
                self.scanner.advance()
            }
        }
    }

    /// A backslash, optional blanks and a newline: skips them and all whitespace after.
    private mutating func skipLineEndingBackslash() throws(TOMLError) -> Bool {
        var ahead = 1
        while let byte = self.scanner.peek(ahead), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { ahead += 1 }
        let isNewline = self.scanner.peek(is: Self.newline, ahead)
            || (self.scanner.peek(is: Self.carriageReturn, ahead) && self.scanner.peek(is: Self.newline, ahead + 1))
        guard isNewline else { return false }
        self.scanner.advance(by: ahead)
        while let byte = self.scanner.peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), Self.newline:
                self.scanner.advance()
            case Self.carriageReturn where self.scanner.peek(is: Self.newline, 1):
                self.scanner.advance(by: 2)
            default:
                return true
            }
        }
        return true
    }

    private mutating func parseEscape(into bytes: inout [UInt8]) throws(TOMLError) {
        let position = self.scanner.position
        self.scanner.advance()
        guard let letter = self.scanner.peek() else { throw self.scanner.error("unterminated escape sequence") }
        self.scanner.advance()
        switch letter {
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case Self.quote: bytes.append(Self.quote)
        case Self.backslash: bytes.append(Self.backslash)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = letter == UInt8(ascii: "u") ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let digit = self.scanner.peek().flatMap(Self.hexValue) else {
                    throw self.scanner.error("\\\(Character(Unicode.Scalar(letter))) needs \(count) hexadecimal digits", at: position)
                }
                value = value << 4 | UInt32(digit)
                self.scanner.advance()
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw self.scanner.error("escape is not a Unicode scalar value", at: position)
            }
            bytes.append(contentsOf: String(Character(scalar)).utf8)
        default:
            throw self.scanner.error("invalid escape sequence", at: position)
        }
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
