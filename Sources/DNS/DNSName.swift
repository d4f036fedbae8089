/// Domain names are handled as lower-cased text without the trailing dot.
/// This type checks and normalises them before any query is made.
public enum DNSName {
    /// The longest name accepted, in presentation form without the trailing dot.
    public static let maximumLength = 253
    public static let maximumLabelLength = 63

    /// Lower-cases, strips one trailing dot, and rejects names no resolver should be asked for.
    public static func normalize(_ name: String) throws(DNSNameError) -> String {
        var text = name
        if text.hasSuffix(".") && text != "." { text.removeLast() }
        if text == "." || text.isEmpty { return "" }
        guard text.utf8.count <= Self.maximumLength else {
            throw DNSNameError(name: name, reason: "name is longer than \(Self.maximumLength) characters")
        }
        var labelLength = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0 else { throw DNSNameError(name: name, reason: "empty label") }
                labelLength = 0
            } else {
                guard byte > 0x20 && byte < 0x7f else {
                    throw DNSNameError(name: name, reason: "invalid character in name")
                }
                labelLength += 1
                guard labelLength <= Self.maximumLabelLength else {
                    throw DNSNameError(name: name, reason: "label is longer than \(Self.maximumLabelLength) characters")
                }
            }
        }
        guard labelLength > 0 else { throw DNSNameError(name: name, reason: "empty label") }
        return text.lowercased()
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
