import Testing

@testable import DNS

/// Remembers every question it is asked, and answers from a zone resolver.
final class RecordingResolver: DNSResolving, @unchecked Sendable {
    let base: ZoneResolver
    private(set) var asked: [DNSQuestion] = []

    init(_ base: ZoneResolver) { self.base = base }

    func immediateResult(for question: DNSQuestion) -> DNSQueryResult? {
        self.asked.append(question)
        return self.base.immediateResult(for: question)
    }

    func resolve(_ question: DNSQuestion) async -> DNSQueryResult {
        self.asked.append(question)
        return await self.base.resolve(question)
    }
}

/// `::ffff:192.0.2.10`, what a dual-stack listener reports for an IPv4 client, is that IPv4
/// address everywhere an IP is taken: same reverse name, same forward family, same result.
@Suite("IPv4-mapped IPv6 addresses")
struct IPv4MappedAddressTests {
    static let zone = """
    mail.good  IN A     192.0.2.10
    mail.good  IN AAAA  ::ffff:192.0.2.10
    $ORIGIN 2.0.192.in-addr.arpa.
    10         IN PTR   mail.good.example.com.
    """

    @Test("text forms of a mapped address parse to the IPv4 address", arguments: [
        "::ffff:192.0.2.10", "::FFFF:192.0.2.10", "::ffff:c000:20a", "0:0:0:0:0:ffff:192.0.2.10",
    ])
    func parsesToIPv4(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address == IPAddress("192.0.2.10"))
        #expect(address.isIPv4)
        #expect(address.description == "192.0.2.10")
        #expect(address.reverseName == "10.2.0.192.in-addr.arpa")
        #expect(address.addressRecordType == .a)
    }

    @Test("addresses that only look alike stay IPv6", arguments: [
        "::192.0.2.10", "::fffe:192.0.2.10", "64:ff9b::192.0.2.10", "1::ffff:192.0.2.10", "::ffff:0:192.0.2.10",
    ])
    func othersStayIPv6(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(!address.isIPv4)
        #expect(address.reverseName.hasSuffix(".ip6.arpa"))
    }

    @Test("the family as written is kept where it is the meaning: AAAA data, server addresses")
    func preservingFamily() throws {
        #expect(IPAddress(preservingFamily: "::ffff:192.0.2.10")?.isIPv4 == false)
        let records = try ZoneFile.parse(Self.zone, origin: "example.com")
        #expect(records.contains { $0.type == .aaaa && $0.data == .aaaa(IPAddress(preservingFamily: "::ffff:192.0.2.10")!) })
        // An A record must still be written as IPv4.
        #expect(throws: ZoneFileError.self) { try ZoneFile.parse("x IN A ::ffff:192.0.2.10", origin: "example.com") }
    }

    @Test("text with a NUL is not an address, whatever comes before it", arguments: [
        "192.0.2.1\u{0}", "192.0.2.1\u{0}junk", "::1\u{0}", "\u{0}192.0.2.1",
    ])
    func nulRefused(_ text: String) {
        #expect(IPAddress(text) == nil)
        #expect(IPAddress(preservingFamily: text) == nil)
    }

    @Test("dns.iprev's plan asks the same questions and gives the same result for both forms", arguments: Driver.allCases)
    func iprevSameQuestions(_ driver: Driver) async throws {
        let plain = RecordingResolver(try makeResolver(Self.zone))
        let mapped = RecordingResolver(try makeResolver(Self.zone))
        let expected = await driver.drive(IprevCheck(ip: ip("192.0.2.10")), on: plain)
        let result = await driver.drive(IprevCheck(ip: ip("::ffff:192.0.2.10")), on: mapped)
        #expect(expected == IprevResult(status: .pass, name: "mail.good.example.com"))
        #expect(result == expected)
        #expect(mapped.asked == plain.asked)
        #expect(mapped.asked == [DNSQuestion(name: "10.2.0.192.in-addr.arpa", type: .ptr),
                                 DNSQuestion(name: "mail.good.example.com", type: .a)])
    }

    @Test("dns.rlookup's plan asks under in-addr.arpa for a mapped address")
    func rlookupSameQuestion() async throws {
        let resolver = RecordingResolver(try makeResolver(Self.zone))
        let result = await resolver.run(ReverseLookup(ip: ip("::ffff:192.0.2.10")))
        #expect(try result.get() == ReverseLookupResult(names: ["mail.good.example.com"], outcome: .ok))
        #expect(resolver.asked == [DNSQuestion(name: "10.2.0.192.in-addr.arpa", type: .ptr)])
    }
}
