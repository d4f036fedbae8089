import DNS
import Testing
@testable import DNSResolver

/// RFC 5155 Appendix A's example zone (NSEC3, SHA-1, 12 iterations, salt aabbccdd, every
/// record with the opt-out flag) and the responses of Appendix B.
@Suite struct DNSSECNSEC3Tests {
    static let salt: [UInt8] = [0xAA, 0xBB, 0xCC, 0xDD]

    /// Appendix A's hashes, the names they stand for, and the types at each.
    static let chain: [(hash: String, name: String, types: [DNSRecordType])] = [
        ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "example", [.mx, .dnskey, .ns, .soa, .nsec3param, .rrsig]),
        ("2t7b4g4vsa5smi47k61mv5bv1a22bojr", "ns1.example", [.a, .rrsig]),
        ("2vptu5timamqttgl4luu9kg21e0aor3s", "x.y.w.example", [.mx, .rrsig]),
        ("35mthgpgcu1qg68fab165klnsnk3dpvl", "a.example", [.ns, .ds, .rrsig]),
        ("b4um86eghhds6nea196smvmlo4ors995", "x.w.example", [.mx, .rrsig]),
        ("gjeqe526plbf1g8mklp59enfd789njgi", "ai.example", [.a, DNSRecordType(rawValue: 13), .aaaa, .rrsig]),
        ("ji6neoaepv8b5o6k4ev33abha8ht9fgc", "y.w.example", []),
        ("k8udemvp1j2f7eg6jebps17vp3n8i58h", "w.example", []),
        ("kohar7mbb8dc2ce8a9qvl8hon4k53uhi", "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example", [.a, .rrsig]),
        ("q04jkcevqvmu85r014c7dkba38o0ji5r", "ns2.example", [.a, .rrsig]),
        ("r53bq7cc2uvmubfu5ocmm6pers9tk9en", "*.w.example", [.mx, .rrsig]),
        ("t644ebqk9bibcna874givr6joj62mlhv", "xx.example", [.a, DNSRecordType(rawValue: 13), .aaaa, .rrsig]),
    ]

    static func records(optOut: Bool = true) -> [(owner: String, data: NSEC3Data)] {
        Self.chain.indices.map { index in
            let next = Self.chain[(index + 1) % Self.chain.count].hash
            return (Self.chain[index].hash + ".example",
                    NSEC3Data(flags: optOut ? 1 : 0, iterations: 12, salt: Self.salt,
                              nextHashedOwner: Base32Hex.decode(Substring(next))!,
                              types: DNSSECTypeBitmap(Self.chain[index].types)))
        }
    }

    static func denial(optOut: Bool = true) -> NSEC3Denial {
        NSEC3Denial(zone: "example", records: Self.records(optOut: optOut), budget: ValidationBudget(limits: DNSSECLimits()))
    }

    @Test func appendixHashes() throws {
        for entry in Self.chain {
            let hash = try #require(DNSSECCrypto.nsec3Hash(name: entry.name, salt: Self.salt, iterations: 12))
            #expect(Base32Hex.encode(hash) == entry.hash, "H(\(entry.name))")
        }
        // B.1's next closer name, from the appendix.
        let nextCloser = try #require(DNSSECCrypto.nsec3Hash(name: "c.x.w.example", salt: Self.salt, iterations: 12))
        #expect(Base32Hex.encode(nextCloser) == "0va5bpr2ou0vk0lbqeeljri88laipsfh")
    }

    @Test func b1NameError() {
        // As published (opt-out on every record): the next closer's span is opt-out, so the
        // NXDOMAIN cannot exclude an unsigned delegation: insecure.
        #expect(Self.denial().proveNXDOMAIN("a.c.x.w.example")
            == .insecure("next closer name c.x.w.example lies in an opt-out span"))
        // Without opt-out, the three-part proof holds.
        #expect(Self.denial(optOut: false).proveNXDOMAIN("a.c.x.w.example")
            == .proven("closest encloser x.w.example, next closer c.x.w.example covered, *.x.w.example covered"))
        // A name that exists cannot be denied.
        guard case .bogus = Self.denial(optOut: false).proveNXDOMAIN("x.w.example") else {
            Issue.record("x.w.example exists")
            return
        }
    }

    @Test func b2NoDataAndB21EmptyNonTerminal() {
        #expect(Self.denial().proveNODATA("ns1.example", .mx) == .proven("NSEC3 for ns1.example lists A RRSIG, not MX"))
        #expect(Self.denial().proveNODATA("y.w.example", .a) == .proven("NSEC3 for y.w.example lists no types, not A"))
        guard case .bogus = Self.denial().proveNODATA("ns1.example", .a) else {
            Issue.record("ns1.example has an A record")
            return
        }
    }

    @Test func b3ReferralToAnOptOutUnsignedZone() {
        #expect(Self.denial().dsAbsence("c.example") == .unsignedDelegation("c.example lies in an opt-out span"))
        // Without opt-out the same records prove nothing about c.example's DS.
        guard case .notAZoneCut = Self.denial(optOut: false).dsAbsence("c.example") else {
            Issue.record("without opt-out, c.example is proven absent, not an unsigned delegation")
            return
        }
    }

    @Test func b4WildcardExpansion() {
        #expect(Self.denial().proveWildcardAnswer("a.z.w.example", encloser: "w.example")
            == .proven("next closer name z.w.example covered"))
        // x.w.example exists: an answer for it cannot come from the wildcard.
        guard case .bogus = Self.denial().proveWildcardAnswer("x.w.example", encloser: "w.example") else {
            Issue.record("x.w.example exists")
            return
        }
    }

    @Test func b5WildcardNoData() {
        #expect(Self.denial().proveNODATA("a.z.w.example", .aaaa)
            == .proven("closest encloser w.example; NSEC3 for *.w.example lists no AAAA"))
        guard case .bogus = Self.denial().proveNODATA("a.z.w.example", .mx) else {
            Issue.record("*.w.example has MX")
            return
        }
    }

    @Test func b6DSChildZoneNoData() {
        #expect(Self.denial().proveNODATA("ai.example", .ds)
            == .proven("NSEC3 for ai.example lists A TYPE13 AAAA RRSIG, not DS"))
        #expect(Self.denial().dsAbsence("ai.example") == .notAZoneCut("NSEC3 for ai.example lists no NS"))
        #expect(Self.denial().dsAbsence("a.example") == .bogus("NSEC3 for a.example lists DS, yet no DS was given"))
    }

    @Test func hashBudgetAndIterationLimit() {
        var limits = DNSSECLimits()
        limits.nsec3HashesPerLookup = 2
        let starved = NSEC3Denial(zone: "example", records: Self.records(), budget: ValidationBudget(limits: limits))
        #expect(starved.proveNXDOMAIN("a.b.c.d.e.x.w.example") == .bogus("NSEC3 hash limit (2 per lookup) reached"))
        let heavy = Self.records().map { record -> (owner: String, data: NSEC3Data) in
            var data = record.data
            data.iterations = 500
            return (record.owner, data)
        }
        let denial = NSEC3Denial(zone: "example", records: heavy, budget: ValidationBudget(limits: DNSSECLimits()))
        #expect(denial.proveNODATA("ns1.example", .mx) == .insecure("NSEC3 with 500 iterations, over the RFC 9276 limit of 150"))
    }
}
