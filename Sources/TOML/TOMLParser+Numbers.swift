extension TOMLParser {
    /// Integers (decimal, `0x`, `0o`, `0b`) and floats (with `inf` and `nan`): the token is
    /// read whole, then checked against the grammar, so `1__0`, `01` and `1.` are errors.
    mutating func parseNumber() throws(TOMLError) -> TOMLValue {
        let position = self.scanner.position
        let start = self.scanner.offset
        while let byte = self.scanner.peek(), Self.isNumberByte(byte) { self.scanner.advance() }
        let token = Array(self.scanner.bytes[start..<self.scanner.offset])
        let text = TOMLText.escaped(String(decoding: token, as: UTF8.self))
        guard !token.isEmpty else { throw self.scanner.error("expected a value, found \(self.scanner.describeNext())") }
        func invalid() -> TOMLError { self.scanner.error("invalid number '\(text)'", at: position) }

        var body = token[...]
        var negative = false
        if let sign = body.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            body = body.dropFirst()
        }
        if body.elementsEqual("inf".utf8) { return TOMLValue(.float(negative ? -.infinity : .infinity), at: position) }
        if body.elementsEqual("nan".utf8) { return TOMLValue(.float(.nan), at: position) }

        if body.count >= 2, body.first == UInt8(ascii: "0"), let radix = Self.radix(body[body.startIndex + 1]) {
            guard token.count == body.count else { throw self.scanner.error("a sign is not allowed on a hexadecimal, octal or binary integer", at: position) }
            let digits = body.dropFirst(2)
            guard Self.hasValidUnderscores(digits), digits.allSatisfy({ $0 == UInt8(ascii: "_") || Self.digitValue($0, radix: radix) != nil }) else {
                throw invalid()
            }
            let clean = String(decoding: digits.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
            guard let value = UInt64(clean, radix: radix), value <= UInt64(Int64.max) else {
                throw self.scanner.error("integer '\(text)' does not fit in 64 bits", at: position)
            }
            return TOMLValue(.integer(Int64(value)), at: position)
        }

        // Decimal: integer part, then an optional fraction and exponent.
        let integerEnd = body.firstIndex { !Self.isDigit($0) && $0 != UInt8(ascii: "_") } ?? body.endIndex
        let integerPart = body[..<integerEnd]
        guard Self.isDecimalInteger(integerPart) else { throw invalid() }
        var rest = body[integerEnd...]
        if rest.isEmpty {
            let clean = String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
            guard let value = Int64(clean) else { throw self.scanner.error("integer '\(text)' does not fit in 64 bits", at: position) }
            return TOMLValue(.integer(value), at: position)
        }
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            let fractionEnd = rest.firstIndex { !Self.isDigit($0) && $0 != UInt8(ascii: "_") } ?? rest.endIndex
            let fraction = rest[..<fractionEnd]
            guard !fraction.isEmpty, Self.hasValidUnderscores(fraction) else { throw invalid() }
            rest = rest[fractionEnd...]
        }
        if let marker = rest.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { rest = rest.dropFirst() }
            guard !rest.isEmpty, rest.allSatisfy({ Self.isDigit($0) || $0 == UInt8(ascii: "_") }), Self.hasValidUnderscores(rest) else {
                throw invalid()
            }
            rest = rest[rest.endIndex...]
        }
        guard rest.isEmpty else { throw invalid() }
        let clean = String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        guard let value = Double(clean) else { throw invalid() }
        return TOMLValue(.float(value), at: position)
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    private static func radix(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "x"): return 16
        case UInt8(ascii: "o"): return 8
        case UInt8(ascii: "b"): return 2
        default: return nil
        }
    }

    private static func digitValue(_ byte: UInt8, radix: Int) -> UInt8? {
        guard let value = Self.hexValue(byte), Int(value) < radix else { return nil }
        return value
    }

    /// Digits with single underscores between them: not first, not last, not doubled.
    private static func hasValidUnderscores(_ digits: ArraySlice<UInt8>) -> Bool {
        guard let first = digits.first, let last = digits.last else { return false }
        let underscore = UInt8(ascii: "_")
        guard first != underscore, last != underscore else { return false }
        var previous: UInt8 = 0
        for byte in digits {
            if byte == underscore && previous == underscore { return false }
            previous = byte
        }
        return true
    }

    /// `0`, or digits without a leading zero, underscores only between digits.
    private static func isDecimalInteger(_ digits: ArraySlice<UInt8>) -> Bool {
        guard Self.hasValidUnderscores(digits), digits.allSatisfy({ Self.isDigit($0) || $0 == UInt8(ascii: "_") }) else { return false }
        return digits.count == 1 || digits.first != UInt8(ascii: "0")
    }

    // MARK: - Dates and times

    /// `1979-05-27`, `07:32:00`, `1979-05-27T07:32:00.999`, `1979-05-27 07:32:00-07:00`.
    mutating func parseDateTime() throws(TOMLError) -> TOMLValue {
        let position = self.scanner.position
        var date: TOMLDateTime.Date?
        var time: TOMLDateTime.Time?
        var offset: Int?
        if self.scanner.peek(is: UInt8(ascii: ":"), 2) {
            time = try self.parseTime(start: position)
        } else {
            let year = try self.fixedDigits(4, start: position)
            try self.expect(UInt8(ascii: "-"), start: position)
            let month = try self.fixedDigits(2, start: position)
            try self.expect(UInt8(ascii: "-"), start: position)
            let day = try self.fixedDigits(2, start: position)
            guard (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day) else {
                throw self.scanner.error("invalid date \(year)-\(month)-\(day)", at: position)
            }
            date = TOMLDateTime.Date(year: year, month: month, day: day)
            let separator = self.scanner.peek()
            let spaceThenTime = separator == UInt8(ascii: " ") && Self.isDigit(self.scanner.peek(1))
                && Self.isDigit(self.scanner.peek(2)) && self.scanner.peek(is: UInt8(ascii: ":"), 3)
            if separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || spaceThenTime {
                self.scanner.advance()
                time = try self.parseTime(start: position)
                switch self.scanner.peek() {
                case UInt8(ascii: "Z")?, UInt8(ascii: "z")?:
                    self.scanner.advance()
                    offset = 0
                case UInt8(ascii: "+")?, UInt8(ascii: "-")?:
                    let sign = self.scanner.peek() == UInt8(ascii: "-") ? -1 : 1
                    self.scanner.advance()
                    let hours = try self.fixedDigits(2, start: position)
                    try self.expect(UInt8(ascii: ":"), start: position)
                    let minutes = try self.fixedDigits(2, start: position)
                    guard hours < 24, minutes < 60 else { throw self.scanner.error("invalid time offset", at: position) }
                    offset = sign * (hours * 60 + minutes)
                default:
                    break
                }
            }
        }
        return TOMLValue(.dateTime(TOMLDateTime(date: date, time: time, offsetMinutes: offset)), at: position)
    }

    private mutating func parseTime(start: TOMLPosition) throws(TOMLError) -> TOMLDateTime.Time {
        let hour = try self.fixedDigits(2, start: start)
        try self.expect(UInt8(ascii: ":"), start: start)
        let minute = try self.fixedDigits(2, start: start)
        try self.expect(UInt8(ascii: ":"), start: start)
        let second = try self.fixedDigits(2, start: start)
        var nanosecond = 0
        if self.scanner.peek(is: UInt8(ascii: ".")) {
            self.scanner.advance()
            var count = 0
            while let byte = self.scanner.peek(), Self.isDigit(byte) {
                if count < 9 { nanosecond = nanosecond * 10 + Int(byte - UInt8(ascii: "0")) }
                count += 1
                self.scanner.advance()
            }
            guard count > 0 else { throw self.scanner.error("expected digits after '.' in a time", at: start) }
            for _ in min(count, 9)..<9 { nanosecond *= 10 }
        }
        // Second 60 is a leap second, which RFC 3339 allows.
        guard hour < 24, minute < 60, second <= 60 else {
            throw self.scanner.error("invalid time \(hour):\(minute):\(second)", at: start)
        }
        return TOMLDateTime.Time(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
    }

    private mutating func fixedDigits(_ count: Int, start: TOMLPosition) throws(TOMLError) -> Int {
        var value = 0
        for _ in 0..<count {
            guard let byte = self.scanner.peek(), Self.isDigit(byte) else {
                throw self.scanner.error("invalid date or time: expected a digit, found \(self.scanner.describeNext())")
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            self.scanner.advance()
        }
        return value
    }

    private mutating func expect(_ byte: UInt8, start: TOMLPosition) throws(TOMLError) {
        guard self.scanner.peek(is: byte) else {
            throw self.scanner.error("invalid date or time: expected '\(Character(Unicode.Scalar(byte)))', found \(self.scanner.describeNext())")
        }
        self.scanner.advance()
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
