import DNS
import Testing
@testable import DNSResolver

/// The DNSSEC record types on the wire, canonical form and order (RFC 4034 §4, §6).
@Suite struct DNSSECWireTests {
    /// RFC 4034 §4.3: `alfa.example.com. NSEC host.example.com. A MX RRSIG NSEC TYPE1234`.
    static let rfcNSEC: [UInt8] = [
        0x04, 0x68, 0x6f, 0x73, 0x74, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
        0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03,
        0x04, 0x1b,
    ] + [UInt8](repeating: 0, count: 26) + [0x20]

    @Test func rfc4034NSECExampleDecodesAndEncodesBack() throws {
        let nsec = try NSECData(rdata: Self.rfcNSEC)
        #expect(nsec.nextName == "host.example.com")
        #expect(nsec.types.types == [1, 15, 46, 47, 1234])
        #expect(nsec.types.contains(.mx) && !nsec.types.contains(.aaaa))
        #expect(try nsec.rdata() == Self.rfcNSEC)
    }

    @Test func rootKeyTagsAreTheIANAOnes() throws {
        // Debian's dns-root-data (/usr/share/dns/root.key): key tags 20326 and 38696.
        for anchor in DNSTrustAnchors.builtInRootKeys {
            #expect([20326, 38696].contains(anchor.keyTag))
        }
        #expect(Set(DNSTrustAnchors.builtInRootKeys.map(\.keyTag)) == [20326, 38696])
    }

    @Test func dnskeyDSRRSIGAndNSEC3RoundTrip() throws {
        let key = DNSKEYData(flags: 257, algorithm: 13, publicKey: Array(repeating: 7, count: 64))
        let decodedKey = try DNSKEYData(rdata: key.rdata)
        #expect(decodedKey == key)
        #expect(decodedKey.isZoneKey && decodedKey.isSecureEntryPoint && !decodedKey.isRevoked)

        let ds = DSData(keyTag: 12345, algorithm: 13, digestType: 2, digest: Array(repeating: 0xAB, count: 32))
        #expect(try DSData(rdata: ds.rdata) == ds)

        let rrsig = RRSIGData(typeCovered: .mx, algorithm: 13, labels: 2, originalTTL: 3600, expiration: 2_000_000_000,
                              inception: 1_000_000_000, keyTag: 4242, signerName: "example.com",
                              signature: Array(repeating: 1, count: 64))
        #expect(try RRSIGData(rdata: try rrsig.rdata()) == rrsig)

        let nsec3 = NSEC3Data(flags: 1, iterations: 12, salt: [0xAA, 0xBB, 0xCC, 0xDD],
                              nextHashedOwner: Array(repeating: 9, count: 20),
                              types: DNSSECTypeBitmap([.a, .rrsig, .nsec3param]))
        let decoded3 = try NSEC3Data(rdata: nsec3.rdata)
        #expect(decoded3 == nsec3)
        #expect(decoded3.isOptOut)
    }

    @Test func rrsigInAMessageSurvivesTheDecoder() throws {
        let rrsig = RRSIGData(typeCovered: .a, algorithm: 15, labels: 3, originalTTL: 300, expiration: 2, inception: 1,
                              keyTag: 1, signerName: "Example.COM", signature: [1, 2, 3])
        let message = DNSMessage(header: DNSHeader(id: 1, isResponse: true),
                                 questions: [DNSWireQuestion(name: "www.example.com", type: .a)],
                                 answers: [DNSResourceRecord(name: "www.example.com", ttl: 300,
                                                             data: .unknown(type: .rrsig, data: try rrsig.rdata()))])
        let decoded = try DNSMessage(decoding: try message.encoded())
        let raw = try #require(decoded.answers.first?.data.rawData)
        let back = try RRSIGData(rdata: raw)
        #expect(back.signerName == "example.com")
        #expect(back.typeCovered == .a && back.labels == 3)
    }

    @Test func malformedRecordDataIsAnErrorNotACrash() {
        // Truncated fixed parts.
        #expect(throws: DNSWireError.self) { try DNSKEYData(rdata: [1, 1, 3]) }
        #expect(throws: DNSWireError.self) { try DNSKEYData(rdata: [1, 1, 3, 13]) }
        #expect(throws: DNSWireError.self) { try DSData(rdata: [0, 1, 13, 2]) }
        #expect(throws: DNSWireError.self) { try RRSIGData(rdata: Array(repeating: 0, count: 17)) }
        // A compression pointer inside an RRSIG signer name.
        #expect(throws: DNSWireError.self) { try RRSIGData(rdata: Array(repeating: 0, count: 18) + [0xC0, 0x0C, 1]) }
        // Type bit maps: window out of order, zero length, trailing zero octet, over 32 octets.
        #expect(throws: DNSWireError.self) { try NSECData(rdata: [0, 1, 0, 1, 0x40, 0, 1, 0x40]) }
        #expect(throws: DNSWireError.self) { try NSECData(rdata: [0, 0, 0]) }
        #expect(throws: DNSWireError.self) { try NSECData(rdata: [0, 0, 2, 0x40, 0]) }
        #expect(throws: DNSWireError.self) { try NSECData(rdata: [0, 0, 33] + Array(repeating: 1, count: 33)) }
        // NSEC3: salt longer than the data, empty hash.
        #expect(throws: DNSWireError.self) { try NSEC3Data(rdata: [1, 0, 0, 10, 200, 1]) }
        #expect(throws: DNSWireError.self) { try NSEC3Data(rdata: [1, 0, 0, 10, 0, 0]) }
        #expect(throws: DNSWireError.self) { try NSEC3PARAMData(rdata: [1, 0, 0, 10, 1, 5, 9]) }
    }

    /// Thousands of random mutations of valid data of every DNSSEC type: each decodes or
    /// throws a `DNSWireError`; none traps (a trap would end the test process).
    @Test func fuzzedDNSSECRecordDataNeverCrashes() throws {
        var generator = SplitMix64(state: 0xD15EC)
        let rrsig = try RRSIGData(typeCovered: .a, algorithm: 13, labels: 2, originalTTL: 60, expiration: 9, inception: 1,
                                  keyTag: 7, signerName: "example.com", signature: Array(repeating: 3, count: 64)).rdata()
        let nsec3 = NSEC3Data(flags: 0, iterations: 1, salt: [1, 2], nextHashedOwner: Array(repeating: 4, count: 20),
                              types: DNSSECTypeBitmap([.a, .mx, .rrsig, DNSRecordType(rawValue: 1234)])).rdata
        let seeds: [(DNSRecordType, [UInt8])] = [
            (.nsec, Self.rfcNSEC), (.rrsig, rrsig), (.nsec3, nsec3),
            (.dnskey, DNSKEYData(flags: 256, algorithm: 8, publicKey: [3, 1, 0, 1] + Array(repeating: 0xC3, count: 128)).rdata),
            (.ds, DSData(keyTag: 1, algorithm: 8, digestType: 2, digest: Array(repeating: 5, count: 32)).rdata),
            (.nsec3param, [1, 0, 0, 12, 4, 0xAA, 0xBB, 0xCC, 0xDD]),
        ]
        var decodedCount = 0
        var errorCount = 0
        for round in 0..<6000 {
            let (type, seed) = seeds[round % seeds.count]
            var bytes = seed
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                switch generator.next() % 3 {
                case 0 where !bytes.isEmpty:
                    bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                case 1 where !bytes.isEmpty:
                    bytes.removeLast(Int(generator.next() % UInt64(bytes.count)))
                default:
                    bytes.append(UInt8(truncatingIfNeeded: generator.next()))
                }
            }
            do {
                switch type {
                case .nsec: _ = try NSECData(rdata: bytes)
                case .rrsig: _ = try RRSIGData(rdata: bytes)
                case .nsec3: _ = try NSEC3Data(rdata: bytes)
                case .dnskey: _ = try DNSKEYData(rdata: bytes)
                case .ds: _ = try DSData(rdata: bytes)
                default: _ = try NSEC3PARAMData(rdata: bytes)
                }
                decodedCount += 1
            } catch {
                errorCount += 1
            }
        }
        #expect(decodedCount + errorCount == 6000)
        #expect(errorCount > 500, "the mutations should hit the guards")
    }

    /// RFC 4034 §6.1's example, in canonical order.
    @Test func canonicalNameOrder() {
        let ordered = ["example", "a.example", "yljkjljk.a.example", "Z.a.example", "zABC.a.EXAMPLE", "z.example",
                       "\\001.z.example", "*.z.example", "\\200.z.example"]
        for (index, name) in ordered.enumerated() {
            for later in ordered[(index + 1)...] {
                #expect(DNSCanonicalForm.precedes(name, later), "\(name) < \(later)")
                #expect(!DNSCanonicalForm.precedes(later, name), "\(later) > \(name)")
            }
        }
        #expect(ordered.shuffled().sorted(by: DNSCanonicalForm.precedes) == ordered)
    }

    /// The in-place comparison for names without escapes agrees with label-by-label order.
    @Test func canonicalOrderFastPathAgreesWithLabels() throws {
        var generator = SplitMix64(state: 0xC0FFEE)
        let alphabet = Array("aAbBz-0*".utf8)
        func name() -> String {
            let count = Int(generator.next() % 4)
            return (0..<count).map { _ in
                String(decoding: (0...(generator.next() % 3)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] },
                       as: UTF8.self)
            }.joined(separator: ".")
        }
        func reference(_ left: String, _ right: String) throws -> Bool {
            let a = Array(try DNSCanonicalForm.labels(left).reversed())
            let b = Array(try DNSCanonicalForm.labels(right).reversed())
            for (x, y) in zip(a, b) where x != y { return x.lexicographicallyPrecedes(y) }
            return a.count < b.count
        }
        for _ in 0..<3000 {
            let (left, right) = (name(), name())
            #expect(DNSCanonicalForm.precedes(left, right) == (try reference(left, right)), "\(left) < \(right)")
            let wire: [UInt8] = try DNSCanonicalForm.labels(left).flatMap { (label: [UInt8]) -> [UInt8] in [UInt8(label.count)] + label } + [0]
            #expect(try DNSCanonicalForm.name(left) == wire, "\(left)")
            #expect(try DNSCanonicalForm.labelCount(left) == DNSCanonicalForm.labels(left).count
                - (left.hasPrefix("*.") || left == "*" ? 1 : 0), "\(left)")
        }
    }

    @Test func canonicalRecordDataLowercasesNamesAndOrdersRecords() throws {
        #expect(try DNSCanonicalForm.recordData(.mx(preference: 10, exchange: "MX.Example.COM"))
            == [0, 10, 2, 0x6d, 0x78, 7] + Array("example".utf8) + [3] + Array("com".utf8) + [0])
        // TXT keeps its case.
        #expect(try DNSCanonicalForm.recordData(.txt([Array("AbC".utf8)])) == [3] + Array("AbC".utf8))
        // Wildcard expansion: an RRSIG with 2 labels over a.b.example.com signs *.example.com.
        #expect(try DNSCanonicalForm.signedOwner("a.b.Example.com", rrsigLabels: 2)
            == [1, 0x2a, 7] + Array("example".utf8) + [3] + Array("com".utf8) + [0])
        #expect(try DNSCanonicalForm.labelCount("*.example.com") == 2)

        let rrsig = RRSIGData(typeCovered: .a, algorithm: 13, labels: 3, originalTTL: 600, expiration: 2, inception: 1,
                              keyTag: 1, signerName: "example.com", signature: [])
        let first = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: "WWW.example.com", type: .a, recordClass: 1,
                                                    records: [.a(IPAddress("192.0.2.2")!), .a(IPAddress("192.0.2.1")!),
                                                              .a(IPAddress("192.0.2.2")!)])
        let second = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: "www.example.com", type: .a, recordClass: 1,
                                                     records: [.a(IPAddress("192.0.2.1")!), .a(IPAddress("192.0.2.2")!)])
        #expect(first == second, "order, case and duplicates do not change what is signed")
        // The original TTL (600) is what is signed, in each record.
        #expect(first.count == (try rrsig.signedPrefix()).count + 2 * (17 + 10 + 4))
    }
}

