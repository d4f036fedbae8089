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
    private static func normalizeASCII(_ name: String, reportedAs original: String) throws(DNSNameError) -> String {
        var text = name
        if text.hasSuffix(".") && text != "." { text.removeLast() }
        if text == "." || text.isEmpty { return "" }
        guard text.utf8.count <= Self.maximumLength else {
            throw DNSNameError(name: original, reason: "name is longer than \(Self.maximumLength) characters")
        }
        var labelLength = 0
        var upperCase = false
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { upperCase = true }
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0 else { throw DNSNameError(name: original, reason: "empty label") }
                labelLength = 0
            } else {
                guard byte > 0x20 && byte < 0x7f else {
                    throw DNSNameError(name: original, reason: "invalid character in name")
                }
                labelLength += 1
                guard labelLength <= Self.maximumLabelLength else {
                    throw DNSNameError(name: original, reason: "label is longer than \(Self.maximumLabelLength) characters")
                }
            }
        }
        guard labelLength > 0 else { throw DNSNameError(name: original, reason: "empty label") }
        // Most names arrive in lower case already: returned as they are, not copied.
        return upperCase ? text.lowercased() : text
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
            guard let dot = candidate.firstIndex(of: ".") else { break }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return names
    }
}
