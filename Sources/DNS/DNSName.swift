/// Domain names are handled as lower-cased text without the trailing dot.
/// This type checks and normalises them before any query is made.
public enum DNSName {
    /// The longest name accepted, in presentation form without the trailing dot.
    public static let maximumLength = 253
    public static let maximumLabelLength = 63

    /// Lower-cases, strips one trailing dot, and rejects names no resolver should be asked for.
    ///
    /// An internationalized name (any non-ASCII character: U-labels, as SMTPUTF8 senders send
    /// them) is first converted to A-labels with IDNA2008 and the UTS #46 mapping
    /// (`IDNName`), so that `bücher.example` asks for `xn--bcher-kva.example`. ASCII names,
    /// A-labels included, are taken as they are: the common case costs nothing more.
    public static func normalize(_ name: String) throws(DNSNameError) -> String {
        let nonASCII = name.utf8.withContiguousStorageIfAvailable { $0.contains { $0 >= 0x80 } }
            ?? name.utf8.contains { $0 >= 0x80 }
        if nonASCII {
            let ascii = try IDNName.toASCII(name)
            return try Self.normalizeASCII(ascii, reportedAs: name)
        }
        return try Self.normalizeASCII(name, reportedAs: name)
    }

    /// The checks every name passes, on its ASCII form; errors name `original`, what the
    /// caller wrote.
    ///
    /// Names read from DNS replies come in presentation form, with RFC 1035 escapes (`\.`,
    /// `\\`, `\DDD`) for octets that are not plain printable ASCII, and may be asked for
    /// again (a PTR name confirmed by its address): an escape counts as the one octet it
    /// stands for, and one that stands for none (a `\` at the end, `\DDD` over 255 or short of
    /// three digits) is refused here, as the query writer would refuse it, so that such a name
    /// is a script error naming it rather than a lookup that fails.
    private static func normalizeASCII(_ name: String, reportedAs original: String) throws(DNSNameError) -> String {
        var text = name
        if text.hasSuffix(".") && text != "." && !Self.endsInEscape(text) { text.removeLast() }
        if text == "." || text.isEmpty { return "" }
        // Each octet is written with at most four characters (`\DDD`).
        guard text.utf8.count <= 4 * Self.maximumLength else {
            throw DNSNameError(name: original, reason: "name is longer than \(Self.maximumLength) characters")
        }
        let scan = text.utf8.withContiguousStorageIfAvailable(Self.scan) ?? Array(text.utf8).withUnsafeBufferPointer(Self.scan)
        switch scan {
        case .refused(let reason):
            throw DNSNameError(name: original, reason: reason)
        case .escaped:
            return Self.canonicalEscapes(text)
        case .plain(let upperCase):
            // Most names arrive in lower case already: returned as they are, not copied.
            return upperCase ? text.lowercased() : text
        }
    }

    /// What `scan` found of a name's text.
    private enum Scan {
        case plain(upperCase: Bool)
        case escaped
        case refused(String)
    }

    /// One pass over a name's text (its root dot taken off): every label 1–63 octets, 253 in
    /// all, each character printable ASCII, each escape standing for one octet.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Scan {
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        var labelLength = 0
        var octets = 0
        var upperCase = false
        var hasEscape = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            guard byte > 0x20 && byte < 0x7f else { return .refused("invalid character in name") }
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0 else { return .refused("empty label") }
                octets += labelLength + 1
                labelLength = 0
                continue
            }
            if byte == UInt8(ascii: "\\") {
                hasEscape = true
                guard index < bytes.count else { return .refused("a \\ at the end escapes nothing") }
                let next = bytes[index]
                index += 1
                guard next > 0x20 && next < 0x7f else { return .refused("invalid character in name") }
                if isDigit(next) {
                    guard index + 1 < bytes.count, isDigit(bytes[index]), isDigit(bytes[index + 1]) else {
                        return .refused("an escape \\DDD needs three digits")
                    }
                    let value = Int(next - 48) * 100 + Int(bytes[index] - 48) * 10 + Int(bytes[index + 1] - 48)
                    guard value <= 255 else { return .refused("an escape \\DDD is at most \\255") }
                    index += 2
                }
            } else if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                upperCase = true
            }
            labelLength += 1
            guard labelLength <= Self.maximumLabelLength else {
                return .refused("label is longer than \(Self.maximumLabelLength) characters")
            }
        }
        guard labelLength > 0 else { return .refused("empty label") }
        guard octets + labelLength <= Self.maximumLength else {
            return .refused("name is longer than \(Self.maximumLength) characters")
        }
        return hasEscape ? .escaped : .plain(upperCase: upperCase)
    }

    /// A checked name with escapes in the one form a reply's names are read in: letters in
    /// lower case, `\.` and `\\` kept, other printable octets plain (`\065` is `a`), the rest
    /// `\DDD`. So `a\065.example` and `aa.example` are one name to every resolver and the cache.
    private static func canonicalEscapes(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            var byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: ".") {  // unescaped: the end of a label
                result.append(byte)
                continue
            }
            if byte == UInt8(ascii: "\\") {  // `scan` has checked every escape
                byte = bytes[index]
                index += 1
                if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    byte = UInt8(Int(byte - 48) * 100 + Int(bytes[index] - 48) * 10 + Int(bytes[index + 1] - 48))
                    index += 2
                }
            }
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): result.append(byte | 0x20)
            case UInt8(ascii: "."), UInt8(ascii: "\\"): result += [UInt8(ascii: "\\"), byte]
            case 0x21...0x7E: result.append(byte)
            default:
                result += [UInt8(ascii: "\\"), UInt8(ascii: "0") + byte / 100, UInt8(ascii: "0") + (byte / 10) % 10,
                           UInt8(ascii: "0") + byte % 10]
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Whether `text` ends in an escaped octet (`a\.` is one label, `a.`), so its last dot is
    /// not the root's: an odd number of backslashes before it.
    private static func endsInEscape(_ text: String) -> Bool {
        text.utf8.dropLast().reversed().prefix { $0 == UInt8(ascii: "\\") }.count % 2 == 1
    }
}

public struct DNSNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var reason: String
    public init(name: String, reason: String) {
        self.name = name
        self.reason = reason
    }
    public var description: String { "invalid domain name '\(self.name)': \(self.reason)" }
}

extension DNSName {
    /// A normalised name and each of its parents, longest first ("a.b.c", "b.c", "c"):
    /// the order in which per-zone settings are looked up (virtual domains, routed zones).
    public static func selfAndAncestors(_ name: String) -> [Substring] {
        var names: [Substring] = []
        var candidate = Substring(name)
        while !candidate.isEmpty {
            names.append(candidate)
            guard let dot = Self.firstLabelEnd(candidate) else { break }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return names
    }

    /// The dot that ends the first label: not an escaped one (`a\.b.c` has parent `c`).
    private static func firstLabelEnd(_ name: Substring) -> Substring.Index? {
        var index = name.startIndex
        while index < name.endIndex {
            switch name[index] {
            case ".": return index
            case "\\": index = name.index(after: index)
            default: break
            }
            if index < name.endIndex { index = name.index(after: index) }
        }
        return nil
    }
}
