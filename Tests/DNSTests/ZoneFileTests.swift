import Foundation
import Testing

@testable import DNS

@Suite("Zone file parsing")
struct ZoneFileTests {
    static let fullZone = """
        ; a zone with every supported feature
        $ORIGIN example.com.
        $TTL 1h
        @   IN  SOA ns1 hostmaster (
                2024010101 ; serial
                2h 30m     ; refresh, retry
                2w 300 )   ; expire, minimum
            IN  NS  ns1
            IN  NS  ns2.example.net.
            MX  10 mail
            MX  20 Mail2.Example.NET.
            600 IN A 192.0.2.1
        www IN 300 A 192.0.2.2
        \tAAAA 2001:db8::2
        txt TXT "v=spf1 -all" "second \\"quoted\\" part; not a comment" plain
        esc TXT "a\\\\b\\065\\;" bare\\;semi
        multi TXT ( "one"
                    "two" )
        alias CNAME www
        _smtp._tcp SRV 10 5 25 mail
        2.2.0.192.in-addr.arpa. PTR www.example.com.
        nullmx MX 0 .
        sub.deeper 60 A 192.0.2.3
        """

    @Test func parsesEveryFeature() throws {
        let records = try ZoneFile.parse(Self.fullZone)
        let expected: [DNSRecord] = [
            DNSRecord(name: "example.com", ttl: 3600, data: .soa(SOAData(
                mname: "ns1.example.com", rname: "hostmaster.example.com", serial: 2_024_010_101,
                refresh: 7200, retry: 1800, expire: 1_209_600, minimum: 300))),
            DNSRecord(name: "example.com", ttl: 3600, data: .ns("ns1.example.com")),
            DNSRecord(name: "example.com", ttl: 3600, data: .ns("ns2.example.net")),
            DNSRecord(name: "example.com", ttl: 3600, data: .mx(preference: 10, exchange: "mail.example.com")),
            DNSRecord(name: "example.com", ttl: 3600, data: .mx(preference: 20, exchange: "mail2.example.net")),
            DNSRecord(name: "example.com", ttl: 600, data: .a(ip("192.0.2.1"))),
            DNSRecord(name: "www.example.com", ttl: 300, data: .a(ip("192.0.2.2"))),
            DNSRecord(name: "www.example.com", ttl: 3600, data: .aaaa(ip("2001:db8::2"))),
            DNSRecord(name: "txt.example.com", ttl: 3600, data: .txt([
                Array("v=spf1 -all".utf8), Array("second \"quoted\" part; not a comment".utf8), Array("plain".utf8),
            ])),
            DNSRecord(name: "esc.example.com", ttl: 3600, data: .txt([Array("a\\bA;".utf8), Array("bare;semi".utf8)])),
            DNSRecord(name: "multi.example.com", ttl: 3600, data: .txt([Array("one".utf8), Array("two".utf8)])),
            DNSRecord(name: "alias.example.com", ttl: 3600, data: .cname("www.example.com")),
            DNSRecord(name: "_smtp._tcp.example.com", ttl: 3600,
                      data: .srv(priority: 10, weight: 5, port: 25, target: "mail.example.com")),
            DNSRecord(name: "2.2.0.192.in-addr.arpa", ttl: 3600, data: .ptr("www.example.com")),
            DNSRecord(name: "nullmx.example.com", ttl: 3600, data: .mx(preference: 0, exchange: "")),
            DNSRecord(name: "sub.deeper.example.com", ttl: 60, data: .a(ip("192.0.2.3"))),
        ]
        #expect(records.count == expected.count)
        for (got, want) in zip(records, expected) {
            #expect(got == want)
        }
    }

    @Test func originParameterAndDefaultTTL() throws {
        let records = try ZoneFile.parse("www A 192.0.2.1\n@ MX 5 www\n", origin: "Example.ORG.", defaultTTL: 42)
        #expect(records == [
            DNSRecord(name: "www.example.org", ttl: 42, data: .a(ip("192.0.2.1"))),
            DNSRecord(name: "example.org", ttl: 42, data: .mx(preference: 5, exchange: "www.example.org")),
        ])
    }

    @Test func rootOriginMakesRelativeNamesTopLevel() throws {
        let records = try ZoneFile.parse("com NS a.gtld-servers.net.\nnet NS b\n", origin: ".")
        #expect(records.map(\.name) == ["com", "net"])
        #expect(records[1].data == .ns("b"))
    }

    @Test func relativeOriginIsRelativeToTheCurrentOne() throws {
        let text = """
            $ORIGIN example.com.
            $ORIGIN mail
            host A 192.0.2.7
            @ A 192.0.2.8
            """
        let records = try ZoneFile.parse(text)
        #expect(records.map(\.name) == ["host.mail.example.com", "mail.example.com"])
    }

    @Test func ttlDirectiveChangesLaterRecordsOnly() throws {
        let text = """
            a A 192.0.2.1
            $TTL 90
            b A 192.0.2.2
            c 1d A 192.0.2.3
            $ttl 1W2d3h4M5s
            d A 192.0.2.4
            """
        let records = try ZoneFile.parse(text, origin: "example.com")
        let units: UInt32 = 604_800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5
        #expect(records.map(\.ttl) == [3600, 90, 86400, units])
    }

    @Test func ownerIsInheritedAcrossDirectives() throws {
        let text = """
            www A 192.0.2.1
            $TTL 10
              A 192.0.2.2
            """
        let records = try ZoneFile.parse(text, origin: "example.com")
        #expect(records.map(\.name) == ["www.example.com", "www.example.com"])
        #expect(records[1].ttl == 10)
    }

    @Test func namesAreNormalised() throws {
        let records = try ZoneFile.parse("WWW.Example.COM. CNAME Target.EXAMPLE.com.\n")
        #expect(records == [DNSRecord(name: "www.example.com", ttl: 3600, data: .cname("target.example.com"))])
    }

    @Test func crlfLineEndingsAndBlankLines() throws {
        let records = try ZoneFile.parse("a A 192.0.2.1\r\n\r\n   \r\n; comment only\r\nb TXT \"x\"\r\n", origin: "example.com")
        #expect(records.map(\.name) == ["a.example.com", "b.example.com"])
    }

    @Test func typeAndClassAreCaseInsensitiveAndClassOptional() throws {
        let records = try ZoneFile.parse("a in a 192.0.2.1\nb 5 mx 1 a\nc CLASS1 TYPE1 192.0.2.3\n", origin: "example.com")
        #expect(records.map(\.type) == [.a, .mx, .a])
        #expect(records[1].ttl == 5)
        #expect(records[2].data == .a(ip("192.0.2.3")))
    }

    /// DS and DNSKEY in text form (RFC 4034 §2.2, §5.3), as trust anchor files hold them:
    /// the digest in hex and the key in base64, both split over lines inside parentheses.
    @Test func dsAndDNSKEYTextForms() throws {
        let text = """
        . IN DS 20326 8 2 ( E06D44B80B8F1D39A95C0B0D7C65D084
                            58e880409bbc683457104237c7f8ec8d )
        example.com. 3600 IN DNSKEY 257 3 15 ( l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQw
                                               AQEX1SxZJA4= )
        """
        let records = try ZoneFile.parse(text)
        #expect(records.count == 2)
        #expect(records[0].name == "" && records[0].type == .ds)
        guard case .unknown(.ds, let ds) = records[0].data, case .unknown(.dnskey, let key) = records[1].data else {
            Issue.record("\(records)")
            return
        }
        #expect(Array(ds.prefix(6)) == [0x4F, 0x66, 8, 2, 0xE0, 0x6D])
        #expect(ds.count == 4 + 32)
        #expect(Array(key.prefix(4)) == [1, 1, 3, 15])
        #expect(key.count == 4 + 32)
        #expect(Base64Text.encode(Array(key.dropFirst(4))) == "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=")
    }

    @Test func genericRFC3597Data() throws {
        let text = """
            unknown TYPE65280 \\# 3 abcdef
            empty TYPE65281 \\# 0
            addr A \\# 4 C0000201
            six AAAA \\# 16 20010db8 00000000 00000000 00000001
            text TXT \\# 6 026869 01 21 00
            """
        let records = try ZoneFile.parse(text, origin: "example.com")
        #expect(records.map(\.data) == [
            .unknown(type: DNSRecordType(rawValue: 65280), data: [0xab, 0xcd, 0xef]),
            .unknown(type: DNSRecordType(rawValue: 65281), data: []),
            .a(ip("192.0.2.1")),
            .aaaa(ip("2001:db8::1")),
            .txt([Array("hi".utf8), Array("!".utf8), []]),
        ])
    }

    @Test func loadsAFileAndNamesItInErrors() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vrules-zonefile-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let good = directory.appendingPathComponent("good.zone").path
        try "$ORIGIN example.net.\nmx MX 10 mail\n".write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try ZoneFile.load(path: good) == [
            DNSRecord(name: "mx.example.net", ttl: 3600, data: .mx(preference: 10, exchange: "mail.example.net")),
        ])
        #expect(try ZoneFile.load(path: good, origin: "ignored.example").first?.name == "mx.example.net")

        let bad = directory.appendingPathComponent("bad.zone").path
        try "a A 192.0.2.1\nb A 192.0.2.999\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let error = #expect(throws: ZoneFileError.self) { try ZoneFile.load(path: bad, origin: "example.net") }
        #expect(error?.description == "\(bad):2: bad IPv4 address '192.0.2.999'")

        let missing = directory.appendingPathComponent("missing.zone").path
        let notFound = #expect(throws: ZoneFileError.self) { try ZoneFile.load(path: missing) }
        #expect(notFound?.line == 0)
        #expect(notFound?.description.hasPrefix("\(missing): cannot read: No such file or directory") == true)
    }

    @Test func errorDescriptionIsPathLineMessage() {
        let error = ZoneFileError(path: "zones/test.zone", line: 7, message: "unknown record type 'FOO'")
        #expect(error.description == "zones/test.zone:7: unknown record type 'FOO'")
    }

    /// One bad zone per error the parser reports, with the line the error must name.
    struct BadZone: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var origin: String? = "example.com"
        var line: Int
        var message: String
        var testDescription: String { self.name }
    }

    static let badZones: [BadZone] = [
        BadZone(name: "bad IPv4", text: "a A 192.0.2.1\n\nb A 192.0.2.300\n", line: 3,
                message: "bad IPv4 address '192.0.2.300'"),
        BadZone(name: "IPv6 in an A record", text: "a A 2001:db8::1\n", line: 1,
                message: "bad IPv4 address '2001:db8::1'"),
        BadZone(name: "bad IPv6", text: "; c\na AAAA 2001:db8:::1\n", line: 2,
                message: "bad IPv6 address '2001:db8:::1'"),
        BadZone(name: "IPv4 in an AAAA record", text: "a AAAA 192.0.2.1\n", line: 1,
                message: "bad IPv6 address '192.0.2.1'"),
        BadZone(name: "unknown type", text: "a A 192.0.2.1\na FOO bar\n", line: 2,
                message: "unknown record type 'FOO'"),
        // DS and DNSKEY have a text form since trust anchors are read as zone files; NSEC has none.
        BadZone(name: "type without text form", text: "a NSEC b.example. A\n", line: 1,
                message: "record type NSEC is not supported in text form; write it as 'NSEC \\# <length> <hex>' (RFC 3597)"),
        BadZone(name: "DS digest not hexadecimal", text: "a DS 1 2 3 abcz\n", line: 1,
                message: "DS digest is not hexadecimal"),
        BadZone(name: "DS digest of odd length", text: "a DS 1 2 3 abc\n", line: 1,
                message: "DS digest has an odd number of hex digits"),
        BadZone(name: "DNSKEY key not base64", text: "a DNSKEY 257 3 13 abc*\n", line: 1,
                message: "DNSKEY public key is not base64"),
        BadZone(name: "DNSKEY flags out of range", text: "a DNSKEY 65536 3 13 AAAA\n", line: 1,
                message: "bad DNSKEY flags '65536' (expected a number from 0 to 65535)"),
        BadZone(name: "relative name without origin", text: "$TTL 5\nwww A 192.0.2.1\n", origin: nil, line: 2,
                message: "relative name 'www' with no origin (set $ORIGIN or pass an origin)"),
        BadZone(name: "relative data name without origin", text: "a.example. MX 10 mail\n", origin: nil, line: 1,
                message: "relative name 'mail' with no origin (set $ORIGIN or pass an origin)"),
        BadZone(name: "@ without origin", text: "@ A 192.0.2.1\n", origin: nil, line: 1,
                message: "'@' used with no origin (set $ORIGIN or pass an origin)"),
        BadZone(name: "bad MX preference", text: "a MX ten mail\n", line: 1,
                message: "bad MX preference 'ten' (expected a number from 0 to 65535)"),
        BadZone(name: "MX preference too large", text: "a MX 65536 mail\n", line: 1,
                message: "bad MX preference '65536' (expected a number from 0 to 65535)"),
        BadZone(name: "bad SRV port", text: "s SRV 1 2 -3 t\n", line: 1,
                message: "bad SRV port '-3' (expected a number from 0 to 65535)"),
        BadZone(name: "bad SOA serial", text: "@ SOA ns h (\n x 1 1 1 1 )\n", line: 2,
                message: "bad SOA serial 'x' (expected a number from 0 to 4294967295)"),
        BadZone(name: "bad TTL", text: "a 3600x A 192.0.2.1\n", line: 1,
                message: "bad TTL '3600x' (expected seconds up to 2147483647, or units like 1h30m)"),
        BadZone(name: "TTL over 31 bits", text: "a 2147483648 A 192.0.2.1\n", line: 1,
                message: "bad TTL '2147483648' (expected seconds up to 2147483647, or units like 1h30m)"),
        BadZone(name: "bad $TTL", text: "\n$TTL 1h30\n", line: 2,
                message: "bad TTL '1h30' (expected seconds up to 2147483647, or units like 1h30m)"),
        BadZone(name: "unterminated parenthesis", text: "a A 192.0.2.1\n@ SOA ns h (\n 1 2 3\n 4 5\n\n", line: 2,
                message: "unterminated parenthesis: '(' is never closed"),
        BadZone(name: "nested parenthesis", text: "a TXT ( \"x\"\n ( \"y\" ) )\n", line: 2,
                message: "nested '(' (the parenthesis opened on line 1 is still open)"),
        BadZone(name: "unbalanced closing parenthesis", text: "a A 192.0.2.1 )\n", line: 1,
                message: "')' without a matching '('"),
        BadZone(name: "unterminated quote", text: "a TXT \"ok\"\nb TXT \"never closed\nc A 192.0.2.1\n", line: 2,
                message: "unterminated quoted string"),
        BadZone(name: "unterminated quote at end of text", text: "a TXT \"x", line: 1,
                message: "unterminated quoted string"),
        BadZone(name: "missing field", text: "a MX 10\n", line: 1, message: "MX record is missing its exchange"),
        BadZone(name: "missing field after parentheses", text: "a SRV ( 1\n 2\n 3 )\n", line: 3,
                message: "SRV record is missing its target"),
        BadZone(name: "missing type", text: "a 300 IN\n", line: 1, message: "missing record type"),
        BadZone(name: "extra field", text: "a A 192.0.2.1 192.0.2.2\n", line: 1,
                message: "unexpected '192.0.2.2' after the A record's data"),
        BadZone(name: "unsupported class", text: "a CH TXT \"x\"\n", line: 1,
                message: "class CH is not supported (only IN)"),
        BadZone(name: "TTL twice", text: "a 1 2 A 192.0.2.1\n", line: 1,
                message: "expected a record type, found '2'"),
        BadZone(name: "no previous owner", text: "; first\n  A 192.0.2.1\n", line: 2,
                message: "no owner name: this line starts with a blank, but no record precedes it"),
        BadZone(name: "unknown directive", text: "$GENERATE 1-2 a A 192.0.2.$\n", line: 1,
                message: "unknown directive $GENERATE"),
        BadZone(name: "$INCLUDE", text: "\n$INCLUDE other.zone\n", line: 2,
                message: "$INCLUDE is not supported; put the records in one file"),
        BadZone(name: "$ORIGIN without argument", text: "$ORIGIN\n", line: 1,
                message: "$ORIGIN takes exactly one domain name"),
        BadZone(name: "TXT string too long", text: "a TXT \"\(String(repeating: "x", count: 256))\"\n", line: 1,
                message: "TXT string is 256 bytes long; split it into strings of at most 255"),
        BadZone(name: "bad TXT escape", text: "a TXT \"\\999\"\n", line: 1,
                message: "bad escape in '\\999': \\999 is over 255"),
        BadZone(name: "short TXT escape", text: "a TXT \"\\06\"\n", line: 1,
                message: "bad escape in '\\06': \\DDD needs three decimal digits"),
        BadZone(name: "empty label", text: "a..b A 192.0.2.1\n", line: 1,
                message: "invalid domain name 'a..b.example.com': empty label"),
        BadZone(name: "label too long", text: "\(String(repeating: "l", count: 64)) A 192.0.2.1\n", line: 1,
                message: "invalid domain name '\(String(repeating: "l", count: 64)).example.com': label is longer than 63 characters"),
        BadZone(name: "RFC 3597 length mismatch", text: "a TYPE99 \\# 3 abcd\n", line: 1,
                message: "RFC 3597 data is 2 bytes long, but its length says 3"),
        BadZone(name: "RFC 3597 bad hex", text: "a TYPE99 \\# 1 zz\n", line: 1,
                message: "bad hex digit in RFC 3597 data"),
        BadZone(name: "RFC 3597 for a type with names", text: "a MX \\# 3 000a00\n", line: 1,
                message: "write MX records in their text form, not RFC 3597's"),
    ]

    @Test(arguments: Self.badZones)
    func reportsErrorsWithTheirLine(_ zone: BadZone) {
        let error = #expect(throws: ZoneFileError.self) {
            try ZoneFile.parse(zone.text, origin: zone.origin, path: "test.zone")
        }
        #expect(error?.path == "test.zone")
        #expect(error?.line == zone.line)
        #expect(error?.message == zone.message)
    }

    @Test func badOriginParameter() {
        let error = #expect(throws: ZoneFileError.self) { try ZoneFile.parse("", origin: "a..b") }
        #expect(error?.message == "bad origin: invalid domain name 'a..b': empty label")
    }

    @Test func emptyTextHasNoRecords() throws {
        #expect(try ZoneFile.parse("").isEmpty)
        #expect(try ZoneFile.parse("; nothing\n\n   \n").isEmpty)
    }
}
