import Testing

@testable import DNS

/// Every name a `dns.*` function takes passes through `DNSName.normalize`: U-labels become
/// A-labels (IDNA2008 with the UTS #46 mapping, by libidn2) before any query.
@Suite("Internationalized domain names")
struct InternationalizedNameTests {
    @Test("U-labels and what UTS #46 maps to them become the A-label form", arguments: [
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example.", "xn--bcher-kva.example"),
        ("b\u{0075}\u{0308}cher.example", "xn--bcher-kva.example"),   // u + combining diaeresis: NFC
        ("ｂücher．example", "xn--bcher-kva.example"),                    // full-width letters and dot
        ("bücher。example", "xn--bcher-kva.example"),                     // ideographic full stop
        ("mail.bücher.example", "mail.xn--bcher-kva.example"),
        ("_dmarc.bücher.example", "_dmarc.xn--bcher-kva.example"),
        ("faß.de", "xn--fa-hia.de"),                                      // non-transitional: ß stays
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ])
    func toALabels(_ input: String, _ expected: String) throws {
        #expect(try DNSName.normalize(input) == expected)
    }

    @Test("ASCII names, A-labels included, are taken as they are (lower-cased)", arguments: [
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.Example.", "xn--bcher-kva.example"),
        ("_spf.example.com", "_spf.example.com"),
    ])
    func asciiUnchanged(_ input: String, _ expected: String) throws {
        #expect(try DNSName.normalize(input) == expected)
    }

    @Test("a name that is not valid IDNA is an error naming it", arguments: [
        "bü cher.example",          // a space
        "☃.example",                // a symbol IDNA2008 disallows
        "bü\u{0}cher.example",      // a NUL, which a C string would cut short
        "\u{0308}bücher.example",   // a label starting with a combining mark
        "bücher..example",          // an empty label
        String(repeating: "ü", count: 70) + ".example",   // a label over 63 octets as an A-label
        String(repeating: "ü.", count: 600) + "example",  // far too long before any conversion
    ])
    func invalid(_ input: String) {
        do {
            let normalized = try DNSName.normalize(input)
            Issue.record("accepted as \(normalized)")
        } catch {
            #expect(error.name == input)
            #expect(error.description.hasPrefix("invalid domain name '\(input)'"), "\(error)")
        }
    }

    @Test("a zone holding the A-label answers the U-label name, through every plan")
    func zoneAnswersULabel() async throws {
        let resolver = try makeResolver("""
        $ORIGIN xn--bcher-kva.example.
        @     IN MX 10 mail
        mail  IN A 192.0.2.25
        """, origin: nil)
        let domain = try DNSName.normalize("bücher.example")
        let route = await resolver.run(MXLocation(domain: domain))
        #expect(try route.get().kind == .mx)
        #expect(try route.get().hosts.map(\.host) == ["mail.xn--bcher-kva.example"])
        let addresses = await resolver.run(AddressLookup(name: try DNSName.normalize("MAIL.Bücher.example"), strategy: .ipv4ThenIpv6))
        #expect(try addresses.get().addresses == [ip("192.0.2.25")])
    }
}
