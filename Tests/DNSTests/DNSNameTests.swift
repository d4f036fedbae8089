import DNS
import Testing

@Suite("Domain names: normalised, with RFC 1035 escapes as a reply's names carry them")
struct DNSNameTests {
    @Test("an escape counts as the one octet it stands for, and comes out in one form", arguments: [
        ("A\\065.Example.", "aa.example"),
        ("x\\046y.example", "x\\.y.example"),
        ("x\\.y.example", "x\\.y.example"),
        ("x\\\\y.example", "x\\\\y.example"),
        ("x\\032y.example", "x\\032y.example"),
        ("a\\.", "a\\."),           // the last dot is the label's: not the root's
        ("a\\\\.", "a\\\\"),        // an escaped backslash, then the root's dot
        (String(repeating: "\\097", count: 63) + ".example", String(repeating: "a", count: 63) + ".example"),
    ])
    func escapes(_ name: String, _ normalized: String) throws {
        #expect(try DNSName.normalize(name) == normalized)
        #expect(try DNSName.normalize(normalized) == normalized, "normalising twice changes nothing")
    }

    @Test("an escape that stands for no octet, or a name too long in octets, is refused by name", arguments: [
        ("bad\\", "a \\ at the end escapes nothing"),
        ("a\\999.example", "an escape \\DDD is at most \\255"),
        ("a\\1.example", "an escape \\DDD needs three digits"),
        ("a\\12", "an escape \\DDD needs three digits"),
        (String(repeating: "\\097", count: 64) + ".example", "label is longer than 63 characters"),
        (Array(repeating: String(repeating: "\\097", count: 63), count: 4).joined(separator: "."), "name is longer than 253 characters"),
    ])
    func badEscapes(_ name: String, _ reason: String) {
        #expect(throws: DNSNameError(name: name, reason: reason)) { try DNSName.normalize(name) }
    }

    @Test("a name's parents start after an unescaped dot")
    func ancestors() {
        #expect(DNSName.selfAndAncestors("a\\.b.c.d") == ["a\\.b.c.d", "c.d", "d"])
        #expect(DNSName.selfAndAncestors("a\\\\.b") == ["a\\\\.b", "b"])
        #expect(DNSName.selfAndAncestors("mail.example.com") == ["mail.example.com", "example.com", "com"])
    }
}
