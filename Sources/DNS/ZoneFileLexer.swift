/// One word of a master file: a run of characters up to a blank, or a quoted string.
/// The text keeps its backslash escapes: only the record type that reads the token
/// knows whether they matter (a TXT string decodes them, a domain name does not).
struct ZoneToken {
    var text: String
    var quoted: Bool
    var line: Int

    /// True for the unquoted token `word` (directives, `@`, `\#`), whatever the quoting elsewhere.
    func isBare(_ word: String) -> Bool {
        !self.quoted && self.text == word
    }
}

/// One logical entry of a master file: the tokens of one line, or of several lines
/// joined by parentheses, with comments removed.
struct ZoneEntry {
    var tokens: [ZoneToken]
    /// The line started with a blank, so the entry has no owner of its own and
    /// inherits the previous one (RFC 1035 §5.1).
    var inheritsOwner: Bool
    var line: Int { self.tokens.first?.line ?? 0 }
}

/// Splits master-file text into entries. Works on UTF-8 bytes because every
/// character with a meaning in the syntax is ASCII; other bytes pass through tokens.
struct ZoneFileLexer {
    private let bytes: [UInt8]
    private let path: String
    private var index = 0
    private var line = 1

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    /// The next entry that has tokens, or nil at the end of the text.
    mutating func nextEntry() throws(ZoneFileError) -> ZoneEntry? {
        while self.index < self.bytes.count {
            let inheritsOwner = Self.isBlank(self.bytes[self.index])
            let tokens = try self.readEntryTokens()
            if !tokens.isEmpty {
                return ZoneEntry(tokens: tokens, inheritsOwner: inheritsOwner)
            }
        }
        return nil
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Characters that end an unquoted token.
    private static func isDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"),
             UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\""):
            return true
        default:
            return false
        }
    }

    private func error(_ line: Int, _ message: String) -> ZoneFileError {
        ZoneFileError(path: self.path, line: line, message: message)
    }

    /// Reads up to the end of the logical line: a newline outside parentheses, or the end of the text.
    private mutating func readEntryTokens() throws(ZoneFileError) -> [ZoneToken] {
        var tokens: [ZoneToken] = []
        var openParenthesisLine: Int? = nil
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                self.index += 1
            case UInt8(ascii: "\n"):
                self.index += 1
                self.line += 1
                if openParenthesisLine == nil { return tokens }
            case UInt8(ascii: ";"):
                while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                    self.index += 1
                }
            case UInt8(ascii: "("):
                // RFC 1035 does not nest parentheses; accepting it would hide a missing ')'.
                if let opened = openParenthesisLine {
                    throw self.error(self.line, "nested '(' (the parenthesis opened on line \(opened) is still open)")
                }
                openParenthesisLine = self.line
                self.index += 1
            case UInt8(ascii: ")"):
                guard openParenthesisLine != nil else { throw self.error(self.line, "')' without a matching '('") }
                openParenthesisLine = nil
                self.index += 1
            case UInt8(ascii: "\""):
                tokens.append(try self.readQuoted())
            default:
                tokens.append(self.readBare())
            }
        }
        if let opened = openParenthesisLine {
            throw self.error(opened, "unterminated parenthesis: '(' is never closed")
        }
        return tokens
    }

    /// A quoted string may not span lines: a missing closing quote would otherwise
    /// swallow the rest of the file silently.
    private mutating func readQuoted() throws(ZoneFileError) -> ZoneToken {
        let startLine = self.line
        self.index += 1
        let start = self.index
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: "\""):
                let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
                self.index += 1
                return ZoneToken(text: text, quoted: true, line: startLine)
            case UInt8(ascii: "\\"):
                self.index += 1
                if self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                    self.index += 1
                }
            case UInt8(ascii: "\n"):
                throw self.error(startLine, "unterminated quoted string")
            default:
                self.index += 1
            }
        }
        throw self.error(startLine, "unterminated quoted string")
    }

    private mutating func readBare() -> ZoneToken {
        let start = self.index
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\\") {
                // An escaped character never ends the token (`\;`, `\ `, `\(`).
                self.index += 1
                if self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                    self.index += 1
                }
                continue
            }
            if Self.isDelimiter(byte) { break }
            self.index += 1
        }
        let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        return ZoneToken(text: text, quoted: false, line: self.line)
    }
}
