/// A Lua source file as lines, with a mask of which bytes are code (not inside a string or
/// a comment). Bytecode gives lines only; columns are found here by looking for the
/// identifier on that line, in code only, so `"acept"` in a string is never pointed at.
struct SourceText {
    let bytes: [UInt8]
    /// Byte offset of the start of each line (line n starts at lineStarts[n - 1]).
    let lineStarts: [Int]
    /// True for bytes outside strings and comments.
    let isCode: [Bool]

    init(_ text: String) {
        self.bytes = Array(text.utf8)
        var starts = [0]
        for (index, byte) in self.bytes.enumerated() where byte == 0x0A { starts.append(index + 1) }
        self.lineStarts = starts
        self.isCode = Self.codeMask(self.bytes)
    }

    var lineCount: Int { self.lineStarts.count }

    func lineRange(_ line: Int) -> Range<Int>? {
        guard line >= 1, line <= self.lineStarts.count else { return nil }
        let start = self.lineStarts[line - 1]
        var end = line < self.lineStarts.count ? self.lineStarts[line] - 1 : self.bytes.count
        if end > start, self.bytes[end - 1] == 0x0D { end -= 1 }
        return start..<end
    }

    /// How an identifier is used, which decides what may precede it.
    enum Usage {
        /// A global name: not after `.` or `:`.
        case global
        /// A field of a table: right after `.` or `:`.
        case member
        /// A key in a table constructor: followed by `=` (not `==`).
        case key
        /// Anywhere in code.
        case any
    }

    /// 1-based column of the `occurrence`-th (0-based) use of `name` on `line`, in code.
    func column(of name: String, line: Int, usage: Usage, occurrence: Int = 0) -> Int? {
        guard let range = self.lineRange(line) else { return nil }
        let needle = Array(name.utf8)
        guard !needle.isEmpty else { return nil }
        var seen = 0
        var index = range.lowerBound
        while index + needle.count <= range.upperBound {
            if self.isCode[index], self.bytes[index] == needle[0],
               self.bytes[index..<(index + needle.count)].elementsEqual(needle),
               !(index > 0 && Self.isIdentifier(self.bytes[index - 1])),
               !(index + needle.count < self.bytes.count && Self.isIdentifier(self.bytes[index + needle.count])),
               self.matches(usage, at: index, length: needle.count) {
                if seen == occurrence { return self.characterColumn(line: line, byteOffset: index) }
                seen += 1
            }
            index += 1
        }
        return nil
    }

    /// The first line where `name` appears as a table key (`name =` or `["name"] =`).
    func firstKey(_ name: String) -> (line: Int, column: Int)? {
        for line in 1...self.lineCount {
            if let column = self.column(of: name, line: line, usage: .key) { return (line, column) }
            if let range = self.lineRange(line) {
                let quoted = Array("[\"\(name)\"]".utf8)
                var index = range.lowerBound
                while index + quoted.count <= range.upperBound {
                    if self.isCode[index], self.bytes[index..<(index + quoted.count)].elementsEqual(quoted) {
                        return (line, self.characterColumn(line: line, byteOffset: index + 2))
                    }
                    index += 1
                }
            }
        }
        return nil
    }

    /// 1-based column of the first occurrence of `text` on `line` (raw, strings included).
    func rawColumn(of text: String, line: Int) -> Int? {
        guard let range = self.lineRange(line), !text.isEmpty else { return nil }
        let needle = Array(text.utf8)
        var index = range.lowerBound
        while index + needle.count <= range.upperBound {
            if self.bytes[index..<(index + needle.count)].elementsEqual(needle) {
                return self.characterColumn(line: line, byteOffset: index)
            }
            index += 1
        }
        return nil
    }

    /// 1-based column of the first non-blank character of `line`.
    func firstCodeColumn(line: Int) -> Int {
        guard let range = self.lineRange(line) else { return 1 }
        for index in range where self.bytes[index] != 0x20 && self.bytes[index] != 0x09 {
            return self.characterColumn(line: line, byteOffset: index)
        }
        return 1
    }

    /// Column just after the last character of `line`.
    func endColumn(line: Int) -> Int {
        guard let range = self.lineRange(line) else { return 1 }
        return self.characterColumn(line: line, byteOffset: range.upperBound)
    }

    /// Columns count characters (UTF-8 continuation bytes are not columns).
    private func characterColumn(line: Int, byteOffset: Int) -> Int {
        let start = self.lineStarts[line - 1]
        var column = 1
        for index in start..<byteOffset where self.bytes[index] & 0xC0 != 0x80 { column += 1 }
        return column
    }

    private func matches(_ usage: Usage, at index: Int, length: Int) -> Bool {
        var before = index - 1
        while before >= 0, self.bytes[before] == 0x20 || self.bytes[before] == 0x09 { before -= 1 }
        let previous: UInt8? = before >= 0 ? self.bytes[before] : nil
        let afterDot = previous == UInt8(ascii: ".") || previous == UInt8(ascii: ":")
        // `..` is concatenation, not a field access.
        let isConcat = previous == UInt8(ascii: ".") && before > 0 && self.bytes[before - 1] == UInt8(ascii: ".")
        switch usage {
        case .any: return true
        case .global: return !afterDot || isConcat
        case .member: return afterDot && !isConcat
        case .key:
            var after = index + length
            while after < self.bytes.count, self.bytes[after] == 0x20 || self.bytes[after] == 0x09 { after += 1 }
            guard after < self.bytes.count, self.bytes[after] == UInt8(ascii: "=") else { return false }
            return !(after + 1 < self.bytes.count && self.bytes[after + 1] == UInt8(ascii: "=")) && (!afterDot || isConcat)
        }
    }

    static func isIdentifier(_ byte: UInt8) -> Bool {
        byte == 0x5F || (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
    }

    /// A small scan of Lua's lexical structure: short strings with escapes, long strings
    /// and comments with `[==[` levels, line comments.
    private static func codeMask(_ bytes: [UInt8]) -> [Bool] {
        var mask = [Bool](repeating: true, count: bytes.count)
        var index = 0
        func longBracketLevel(at start: Int) -> Int? {
            guard start < bytes.count, bytes[start] == UInt8(ascii: "[") else { return nil }
            var cursor = start + 1
            var level = 0
            while cursor < bytes.count, bytes[cursor] == UInt8(ascii: "=") { level += 1; cursor += 1 }
            return cursor < bytes.count && bytes[cursor] == UInt8(ascii: "[") ? level : nil
        }
        func skipLong(from start: Int, level: Int) -> Int {
            var cursor = start
            while cursor < bytes.count {
                if bytes[cursor] == UInt8(ascii: "]") {
                    var probe = cursor + 1
                    var count = 0
                    while probe < bytes.count, bytes[probe] == UInt8(ascii: "=") { count += 1; probe += 1 }
                    if count == level, probe < bytes.count, bytes[probe] == UInt8(ascii: "]") { return probe + 1 }
                }
                cursor += 1
            }
            return bytes.count
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "-"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "-") {
                let end: Int
                if let level = longBracketLevel(at: index + 2) {
                    end = skipLong(from: index + 4 + level, level: level)
                } else {
                    var cursor = index
                    while cursor < bytes.count, bytes[cursor] != 0x0A { cursor += 1 }
                    end = cursor
                }
                for i in index..<end { mask[i] = false }
                index = end
            } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                var cursor = index + 1
                while cursor < bytes.count, bytes[cursor] != byte, bytes[cursor] != 0x0A {
                    if bytes[cursor] == UInt8(ascii: "\\") { cursor += 1 }
                    cursor += 1
                }
                let end = min(cursor + 1, bytes.count)
                for i in index..<end { mask[i] = false }
                index = end
            } else if let level = longBracketLevel(at: index) {
                let end = skipLong(from: index + 2 + level, level: level)
                for i in index..<end { mask[i] = false }
                index = end
            } else {
                index += 1
            }
        }
        return mask
    }
}
