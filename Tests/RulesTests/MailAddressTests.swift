import Rules
import Testing

/// How a sender or recipient Postfix sends is split for rules: ASCII text (parsed over
/// bytes) and UTF-8 text (SMTPUTF8, parsed by characters) alike.
@Suite("Mail addresses")
struct MailAddressTests {
    @Test("spaces and one pair of angle brackets go; the domain is after the last @, lowercased", arguments: [
        (" <Alice@Example.COM> ", "Alice@Example.COM", "Alice", "example.com"),
        ("bob@implicit.example", "bob@implicit.example", "bob", "implicit.example"),
        ("<>", "", "", ""),
        ("", "", "", ""),
        ("   ", "", "", ""),
        ("postmaster", "postmaster", "postmaster", ""),
        ("\"a@b\"@C.test", "\"a@b\"@C.test", "\"a@b\"", "c.test"),
        ("<a@b", "<a@b", "<a", "b"),
        ("a@", "a@", "a", ""),
        ("j\u{f6}rg@B\u{fc}cher.Example", "j\u{f6}rg@B\u{fc}cher.Example", "j\u{f6}rg", "b\u{fc}cher.example"),
        (" <J\u{d6}RG@X.Test> ", "J\u{d6}RG@X.Test", "J\u{d6}RG", "x.test"),
    ])
    func split(text: String, address: String, localPart: String, domain: String) {
        let parsed = MailAddress(text)
        #expect(parsed.address == address)
        #expect(parsed.localPart == localPart)
        #expect(parsed.domain == domain)
    }
}
