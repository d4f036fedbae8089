// RFC 7208 §7 macro strings: parsed once when a record is read (a syntax error anywhere in a
// record is a permerror before any term is evaluated), expanded per term.

/// A parsed `macro-string` or `explain-string`.
struct SPFMacroString: Hashable, Sendable {
    enum Part: Hashable, Sendable {
        case literal(String)
        case macro(SPFMacro)
    }

    var parts: [Part]

    /// Whether expanding it needs the validated name of the client IP (`%{p}`), which costs
    /// DNS queries that must be made before the expansion.
    var needsValidatedName: Bool {
        self.parts.contains { part in
            if case .macro(let macro) = part { return macro.letter == "p" }
            return false
        }
    }

    /// Whether any part is a macro (`%{...}`; `%%`, `%_` and `%-` are literals).
    var hasMacro: Bool {
        self.parts.contains { part in
            if case .macro = part { return true }
            return false
        }
    }

    /// Whether the string ends with a `macro-expand` (the `domain-end` alternative that
    /// needs no literal top label).
    var endsWithMacro: Bool {
        if case .macro = self.parts.last { return true }
        return false
    }
}

/// One `%{...}` expansion.
struct SPFMacro: Hashable, Sendable {
    /// The macro letter, lower-cased.
    var letter: Character
    /// Upper-case letters are URL-escaped after expansion (RFC 7208 §7.3).
    var escapes: Bool
    /// Keep only this many right-hand parts; nil keeps all.
    var rightmostParts: Int?
    var reversed: Bool
    /// The characters that split the value; "." when none is given.
    var delimiters: Set<Character>
}

/// Why a macro string is not valid; the record holding it is a permerror.
struct SPFSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    var reason: String
    var description: String { self.reason }
}

enum SPFMacroParser {
    /// Letters allowed in every macro string.
    static let domainLetters: Set<Character> = ["s", "l", "o", "d", "i", "p", "v", "h"]
    /// Letters allowed only in an explanation (`exp=` TXT), RFC 7208 §7.2.
    static let explanationLetters: Set<Character> = ["c", "r", "t"]
    static let delimiterCharacters: Set<Character> = [".", "-", "+", ",", "/", "_", "="]

    /// Parses a `macro-string` (in a domain-spec or modifier value), or an `explain-string`
    /// when `explanation` is true (which also allows spaces and the c, r, t letters).
    static func parse(_ text: Substring, explanation: Bool) throws(SPFSyntaxError) -> SPFMacroString {
        var parts: [SPFMacroString.Part] = []
        var literal = ""
        var index = text.startIndex
        func flush() {
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = ""
            }
        }
        while index < text.endIndex {
            let character = text[index]
            guard let ascii = character.asciiValue else {
                throw SPFSyntaxError(reason: "non-ASCII character in '\(text)'")
            }
            if character != "%" {
                let allowed = ascii >= 0x21 && ascii <= 0x7e || (explanation && ascii == 0x20)
                guard allowed else { throw SPFSyntaxError(reason: "invalid character in '\(text)'") }
                literal.append(character)
                index = text.index(after: index)
                continue
            }
            let next = text.index(after: index)
            guard next < text.endIndex else { throw SPFSyntaxError(reason: "'%' at the end of '\(text)'") }
            switch text[next] {
            case "%": literal.append("%")
            case "_": literal.append(" ")
            case "-": literal.append("%20")
            case "{":
                guard let close = text[next...].firstIndex(of: "}") else {
                    throw SPFSyntaxError(reason: "unterminated macro in '\(text)'")
                }
                flush()
                parts.append(.macro(try self.parseMacro(text[text.index(after: next)..<close], explanation: explanation)))
                index = text.index(after: close)
                continue
            default:
                throw SPFSyntaxError(reason: "invalid macro '%\(text[next])' in '\(text)'")
            }
            index = text.index(after: next)
        }
        flush()
        return SPFMacroString(parts: parts)
    }

    /// `macro-letter transformers *delimiter`, the inside of `%{...}`.
    private static func parseMacro(_ body: Substring, explanation: Bool) throws(SPFSyntaxError) -> SPFMacro {
        guard let first = body.first, first.isASCII, first.isLetter else {
            throw SPFSyntaxError(reason: "macro '%{\(body)}' has no letter")
        }
        let letter = Character(first.lowercased())
        guard self.domainLetters.contains(letter) || (explanation && self.explanationLetters.contains(letter)) else {
            throw SPFSyntaxError(reason: "invalid macro letter '\(first)'")
        }
        var rest = body.dropFirst()
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        rest = rest.dropFirst(digits.count)
        var rightmost: Int? = nil
        if !digits.isEmpty {
            // The value must be nonzero (§7.3); any larger count than there are parts keeps
            // them all, so a long run of digits is simply "all".
            let significant = digits.drop(while: { $0 == "0" })
            guard !significant.isEmpty else {
                throw SPFSyntaxError(reason: "digit transformer of zero in '%{\(body)}'")
            }
            rightmost = significant.count > 9 ? Int.max : Int(significant)
        }
        var reversed = false
        if let character = rest.first, character == "r" || character == "R" {
            reversed = true
            rest = rest.dropFirst()
        }
        var delimiters: Set<Character> = []
        for character in rest {
            guard self.delimiterCharacters.contains(character) else {
                throw SPFSyntaxError(reason: "invalid delimiter '\(character)' in '%{\(body)}'")
            }
            delimiters.insert(character)
        }
        return SPFMacro(letter: letter, escapes: first.isUppercase, rightmostParts: rightmost, reversed: reversed,
                        delimiters: delimiters.isEmpty ? ["."] : delimiters)
    }
}

/// The values macros expand to during one check_host() evaluation.
struct SPFMacroValues: Sendable {
    var sender: String
    var localPart: String
    var senderDomain: String
    var ip: IPAddress
    var helo: String
    var receiver: String
    /// The validated names of `ip`, in PTR order, once looked up (`%{p}`).
    var validatedNames: [String]?
    var timestamp: Int

    func value(of letter: Character, domain: String) -> String {
        switch letter {
        case "s": return self.sender
        case "l": return self.localPart
        case "o": return self.senderDomain
        case "d": return domain
        case "i": return Self.dottedAddress(self.ip)
        case "p": return self.validatedName(for: domain)
        case "v": return self.ip.isIPv4 ? "in-addr" : "ip6"
        case "h": return self.helo
        case "c": return self.ip.description
        case "r": return self.receiver
        case "t": return String(self.timestamp)
        default: return ""
        }
    }

    /// `%{p}` (RFC 7208 §7.3): the current domain if validated, else one of its subdomains,
    /// else any validated name, else "unknown".
    func validatedName(for domain: String) -> String {
        guard let names = self.validatedNames else { return "unknown" }
        return names.first(where: { $0 == domain })
            ?? names.first(where: { $0.hasSuffix("." + domain) })
            ?? names.first
            ?? "unknown"
    }

    /// `%{i}`: dotted decimal for IPv4, dot-separated nibbles for IPv6 (RFC 7208 §7.3).
    static func dottedAddress(_ ip: IPAddress) -> String {
        switch ip {
        case .v4(let bytes):
            return bytes.map(String.init).joined(separator: ".")
        case .v6(let bytes):
            let hex = Array("0123456789abcdef")
            var nibbles: [String] = []
            nibbles.reserveCapacity(32)
            for byte in bytes {
                nibbles.append(String(hex[Int(byte >> 4)]))
                nibbles.append(String(hex[Int(byte & 0x0f)]))
            }
            return nibbles.joined(separator: ".")
        }
    }
}

extension SPFMacroString {
    /// The expansion for `domain` (the current `%{d}`), left to right, stopping once it is
    /// `limit` octets long: a hostile record can repeat a macro of a hostile sender thousands
    /// of times, and only a bounded prefix is ever used (an explanation).
    func expand(with values: SPFMacroValues, domain: String, prefixLimit limit: Int) -> String {
        var output = ""
        for part in self.parts {
            switch part {
            case .literal(let text):
                output += text
            case .macro(let macro):
                output += macro.expand(values.value(of: macro.letter, domain: domain))
            }
            if output.utf8.count >= limit { break }
        }
        return output
    }

    /// The last `limit` octets of the expansion (or all of it when shorter), expanded right to
    /// left and stopping once that many are known: a name longer than 253 characters is cut
    /// from the left (RFC 7208 §7.3), so only its end is ever used. The second value tells
    /// whether anything was cut.
    func expandSuffix(with values: SPFMacroValues, domain: String, limit: Int) -> (text: Substring, cut: Bool) {
        // The common domain-spec, a plain name (`include:_spf.example.com`): nothing to join.
        if self.parts.count == 1, case .literal(let text) = self.parts[0], text.utf8.count <= limit {
            return (Substring(text), false)
        }
        var pieces: [String] = []
        var length = 0
        for part in self.parts.reversed() {
            let piece: String
            switch part {
            case .literal(let text):
                piece = text
            case .macro(let macro):
                piece = macro.expand(values.value(of: macro.letter, domain: domain))
            }
            pieces.append(piece)
            length += piece.utf8.count
            if length > limit { break }
        }
        let text = pieces.reversed().joined()
        guard length > limit else { return (Substring(text), false) }
        let bytes = text.utf8
        let start = bytes.index(bytes.endIndex, offsetBy: -limit)
        return (Substring(String(decoding: bytes[start...], as: UTF8.self)), true)
    }
}

extension SPFMacro {
    func expand(_ value: String) -> String {
        var parts = value.split(omittingEmptySubsequences: false, whereSeparator: { self.delimiters.contains($0) })
        if self.reversed { parts.reverse() }
        if let count = self.rightmostParts, count < parts.count {
            parts = Array(parts.suffix(count))
        }
        let joined = parts.joined(separator: ".")
        return self.escapes ? Self.urlEscaped(joined) : joined
    }

    /// Escapes everything but RFC 3986 unreserved characters.
    static func urlEscaped(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF")
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(Character(UnicodeScalar(byte)))
            default:
                output.append("%")
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0f)])
            }
        }
        return output
    }
}
