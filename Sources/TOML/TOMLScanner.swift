/// Reads a document byte by byte, like the DNS wire reader: every read is guarded, so
/// no input can read past the end, and the line and column of the next byte are always
/// known for error messages.
struct TOMLScanner {
    let bytes: [UInt8]
    private(set) var offset: Int = 0
    private(set) var line: Int = 1
    private(set) var column: Int = 1

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    var position: TOMLPosition { TOMLPosition(line: self.line, column: self.column) }
    var isAtEnd: Bool { self.offset >= self.bytes.count }

    /// The byte `ahead` places on, or nil past the end.
    func peek(_ ahead: Int = 0) -> UInt8? {
        let index = self.offset + ahead
        guard ahead >= 0, index < self.bytes.count else { return nil }
        return self.bytes[index]
    }

    func peek(is byte: UInt8, _ ahead: Int = 0) -> Bool {
        self.peek(ahead) == byte
    }

    /// Moves one byte on, counting lines and (on the first byte of each scalar) columns.
    mutating func advance() {
        guard self.offset < self.bytes.count else { return }
        let byte = self.bytes[self.offset]
        self.offset += 1
        if byte == UInt8(ascii: "\n") {
            self.line += 1
            self.column = 1
        } else if byte & 0xC0 != 0x80 {
            self.column += 1
        }
    }

    mutating func advance(by count: Int) {
        for _ in 0..<count { self.advance() }
    }

    /// Whether the next bytes are `text` (ASCII); consumes them when they are.
    mutating func consume(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        let start = text.utf8Start
        for index in 0..<count where self.peek(index) != start[index] { return false }
        self.advance(by: count)
        return true
    }

    mutating func skipBlanks() {
        while let byte = self.peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { self.advance() }
    }

    func error(_ reason: String) -> TOMLError {
        TOMLError(position: self.position, reason: reason)
    }

    func error(_ reason: String, at position: TOMLPosition) -> TOMLError {
        TOMLError(position: position, reason: reason)
    }

    /// The next character, described for an error message.
    func describeNext() -> String {
        guard let byte = self.peek() else { return "end of file" }
        switch byte {
        case UInt8(ascii: "\n"): return "end of line"
        case UInt8(ascii: "\r"): return "a carriage return"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        default: return "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
    }
}
