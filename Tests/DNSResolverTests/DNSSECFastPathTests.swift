import Crypto
import DNS
import DNSTestSupport
import Foundation
import Testing
@testable import DNSResolver

/// The validator's fast paths (signed data written in one buffer, names handled as octets,
/// public keys decoded once per DNSKEY record, the verified-signature key) against the
/// general code or first principles, with the hostile cases that must still be refused.
@Suite struct DNSSECFastPathTests {
    // MARK: - Signed data

    /// The signed data of a one-record RRset (written in place) equals the same data built
    /// from its parts, and that of the same record given twice (the sorted, deduplicated
    /// path), for plain owners, mixed case, and wildcard expansions of every depth.
    @Test func oneRecordSignedDataAgreesWithTheGeneralPath() throws {
        var generator = SplitMix64(state: 0x5EED)
        let alphabet = Array("aBz-0".utf8)
        for _ in 0..<500 {
            let labels = 1 + Int(generator.next() % 4)
            let owner = (0..<labels).map { _ in
                String(decoding: (0...(generator.next() % 4)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] },
                       as: UTF8.self)
            }.joined(separator: ".")
            let rrsigLabels = UInt8(generator.next() % UInt64(labels + 1))
            let rrsig = RRSIGData(typeCovered: .a, algorithm: 13, labels: rrsigLabels, originalTTL: 300, expiration: 9,
                                  inception: 1, keyTag: 7, signerName: "Zone.Test", signature: [1, 2])
            let record = DNSRecordData.a(IPAddress("192.0.2.\(generator.next() % 250)")!)
            let one = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: owner, type: .a, recordClass: 1, records: [record])
            let twice = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: owner, type: .a, recordClass: 1,
                                                        records: [record, record])
            #expect(one == twice, "\(owner) labels \(rrsigLabels)")

            // From first principles: the prefix, then "*." and the rightmost labels when the
            // RRSIG counts fewer labels than the owner has.
            let ownerLabels = try DNSCanonicalForm.labels(owner)
            var signedOwner: [UInt8] = []
            if Int(rrsigLabels) < ownerLabels.count {
                signedOwner = [1, UInt8(ascii: "*")]
                for label in ownerLabels.suffix(Int(rrsigLabels)) { signedOwner += [UInt8(label.count)] + label }
                signedOwner.append(0)
            } else {
                for label in ownerLabels { signedOwner += [UInt8(label.count)] + label }
                signedOwner.append(0)
            }
            var expected = try rrsig.signedPrefix()
            expected += signedOwner + [0, 1, 0, 1, 0, 0, 1, 44, 0, 4]
            expected += try DNSCanonicalForm.recordData(record)
            #expect(one == expected, "\(owner) labels \(rrsigLabels)")
        }
    }

    @Test func namesWithEscapesOrBadLabelsTakeTheGeneralPath() throws {
        #expect(try DNSCanonicalForm.labelCount("a\\.b.example") == 2)
        #expect(try DNSCanonicalForm.labelCount("*") == 0)
        #expect(try DNSCanonicalForm.labelCount("*.example") == 1)
        #expect(try DNSCanonicalForm.labelCount("") == 0)
        #expect(throws: DNSWireError.self) { try DNSCanonicalForm.labelCount("a..example") }
        #expect(throws: DNSWireError.self) { try DNSCanonicalForm.labelCount(String(repeating: "x", count: 64) + ".example") }
        #expect(throws: DNSWireError.self) { try DNSCanonicalForm.labelCount(".example") }

        // Signed data over an owner with an escaped dot: one label "a.b", as the general path says.
        let rrsig = RRSIGData(typeCovered: .a, algorithm: 13, labels: 2, originalTTL: 1, expiration: 2, inception: 1,
                              keyTag: 1, signerName: "example", signature: [])
        let data = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: "A\\.b.example", type: .a, recordClass: 1,
                                                   records: [.a(IPAddress("192.0.2.1")!)])
        let owner: [UInt8] = [3, 0x61, 0x2E, 0x62, 7] + Array("example".utf8) + [0]
        #expect(data == (try rrsig.signedPrefix()) + owner + [0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 192, 0, 2, 1])
        // A signer name that cannot be encoded is an error, not a trap.
        let bad = RRSIGData(typeCovered: .a, algorithm: 13, labels: 1, originalTTL: 1, expiration: 2, inception: 1,
                            keyTag: 1, signerName: "a..b", signature: [])
        #expect(throws: DNSWireError.self) {
            try DNSCanonicalForm.signedData(rrsig: bad, owner: "x.a.b", type: .a, recordClass: 1, records: [.a(IPAddress("192.0.2.1")!)])
        }
    }

    @Test func ancestorsAndParentsAreComparedAsOctets() {
        #expect(DenialNames.isAtOrBelow("a.example", "example"))
        #expect(DenialNames.isAtOrBelow("example", "example"))
        #expect(DenialNames.isAtOrBelow("anything", ""))
        #expect(!DenialNames.isAtOrBelow("aexample", "example"))
        #expect(!DenialNames.isAtOrBelow("ample", "example"))
        #expect(!DenialNames.isAtOrBelow("example", "a.example"))
        #expect(!DenialNames.isAtOrBelow("", "example"))
        #expect(DNSName.parentZone(of: "a\\.b.example") == "example")
        #expect(DNSName.parentZone(of: "a\\\\.example") == "example")
        #expect(DNSName.parentZone(of: "é.example") == "example")
        #expect(DNSName.parentZone(of: "example") == "")
        #expect(DNSName.parentZone(of: "") == "")
    }

    // MARK: - RRset grouping

    /// Small sections are grouped in place and large ones through a dictionary: both give the
    /// RRsets in order of first appearance with their own records and signatures; signers come
    /// out once each, in order, for a few signatures and for many; malformed RRSIGs and other
    /// classes are dropped.
    @Test(arguments: [(2, 0), (40, 12)])
    func groupingSmallAndLargeSections(owners: Int, extraSignatures: Int) throws {
        func rrsig(_ type: DNSRecordType, signer: String) throws -> DNSResourceRecord {
            let data = RRSIGData(typeCovered: type, algorithm: 13, labels: 2, originalTTL: 60, expiration: 2, inception: 1,
                                 keyTag: 1, signerName: signer, signature: [1])
            return DNSResourceRecord(name: "", ttl: 60, data: .unknown(type: .rrsig, data: try data.rdata()))
        }
        var section: [DNSResourceRecord] = []
        for index in 0..<owners {
            let name = "n\(index).example"
            section.append(DNSResourceRecord(name: name, ttl: 60, data: .a(IPAddress("192.0.2.1")!)))
            var signature = try rrsig(.a, signer: "example")
            signature.name = name
            section.append(signature)
            section.append(DNSResourceRecord(name: name, ttl: 60, data: .txt([[1]])))
            section.append(DNSResourceRecord(name: name, ttl: 60, data: .a(IPAddress("192.0.2.2")!)))
        }
        // More signatures over n0's A set, by signers that repeat.
        for index in 0..<extraSignatures {
            var signature = try rrsig(.a, signer: "s\(index % 5).example")
            signature.name = "n0.example"
            section.append(signature)
        }
        section.append(DNSResourceRecord(name: "n0.example", ttl: 60, data: .unknown(type: .rrsig, data: [1, 2, 3])))
        section.append(DNSResourceRecord(name: "n0.example", recordClass: 3, ttl: 60, data: .a(IPAddress("192.0.2.3")!)))
        #expect((section.count > 16) == (owners > 2), "both the in-place and the dictionary grouping are exercised")

        let sets = SignedRRset.group(section)
        #expect(sets.count == 2 * owners)
        for index in 0..<owners {
            let a = sets[2 * index]
            let txt = sets[2 * index + 1]
            #expect(a.owner == "n\(index).example" && a.type == .a && a.records.count == 2)
            #expect(txt.owner == a.owner && txt.type == .txt && txt.records.count == 1 && txt.signatures.isEmpty)
            #expect(a.signatures.count == (index == 0 ? 1 + extraSignatures : 1))
        }
        #expect(sets[0].signers == ["example"] + (0..<min(5, extraSignatures)).map { "s\($0).example" })
        #expect(sets[2].signers == ["example"])
    }

    // MARK: - Decoded keys

    struct Signer {
        var privateKey: P256.Signing.PrivateKey
        var dnskey: DNSKEYData
    }

    /// Two P-256 zone keys of one zone with the same key tag: drawn until two collide (among
    /// 3,000 keys a collision of 16-bit tags is all but certain: 1 - e^-68).
    static func sameTagKeys() throws -> (Signer, Signer) {
        var byTag: [UInt16: Signer] = [:]
        for _ in 0..<3000 {
            let privateKey = P256.Signing.PrivateKey()
            let dnskey = DNSKEYData(flags: 256, algorithm: 13, publicKey: Array(privateKey.publicKey.rawRepresentation))
            let signer = Signer(privateKey: privateKey, dnskey: dnskey)
            if let other = byTag[dnskey.keyTag], other.dnskey.publicKey != dnskey.publicKey { return (other, signer) }
            byTag[dnskey.keyTag] = signer
        }
        throw CancellationError()
    }

    /// An A RRset signed by `signer`, dated around `now`.
    static func signed(_ address: String, by signer: Signer, now: Int64) throws -> SignedRRset {
        var rrsig = RRSIGData(typeCovered: .a, algorithm: 13, labels: 3, originalTTL: 300,
                              expiration: UInt32(now + 3600), inception: UInt32(now - 3600),
                              keyTag: signer.dnskey.keyTag, signerName: "zone.test", signature: [])
        let record = DNSRecordData.a(IPAddress(address)!)
        let data = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: "www.zone.test", type: .a, recordClass: 1, records: [record])
        rrsig.signature = Array(try signer.privateKey.signature(for: data).rawRepresentation)
        return SignedRRset(owner: "www.zone.test", type: .a,
                           records: [DNSResourceRecord(name: "www.zone.test", ttl: 300, data: record)], signatures: [rrsig])
    }

    /// A key rollover, or a second key with the same tag, never gets another key's decoded
    /// form: each DNSKEY record verifies only its own signatures, whichever was decoded first,
    /// with or without the verified-signature cache.
    @Test func decodedKeysBelongToTheirOwnRecord() throws {
        let (first, second) = try Self.sameTagKeys()
        #expect(first.dnskey.keyTag == second.dnskey.keyTag)
        let now: Int64 = 1_800_000_000
        let byFirst = try Self.signed("192.0.2.1", by: first, now: now)
        let bySecond = try Self.signed("192.0.2.2", by: second, now: now)
        for cache in [nil, VerifiedSignatureCache()] as [VerifiedSignatureCache?] {
            // Fresh records each round: nothing decoded yet.
            let firstKey = DNSKEYData(flags: 256, algorithm: 13, publicKey: first.dnskey.publicKey)
            let secondKey = DNSKEYData(flags: 256, algorithm: 13, publicKey: second.dnskey.publicKey)
            #expect(!firstKey.hasDecodedKey && !secondKey.hasDecodedKey)
            func verifier() -> RRsetVerifier {
                RRsetVerifier(budget: ValidationBudget(limits: DNSSECLimits()), now: now, trace: nil, verified: cache)
            }
            // Both keys carry the tag: the first is tried (and decoded), fails, then the second.
            guard case .verified = verifier().verify(bySecond, zone: "zone.test", keys: [firstKey, secondKey]) else {
                Issue.record("the second key's signature did not verify with both keys offered")
                return
            }
            #expect(firstKey.hasDecodedKey && secondKey.hasDecodedKey)
            guard case .verified = verifier().verify(byFirst, zone: "zone.test", keys: [secondKey, firstKey]) else {
                Issue.record("the first key's signature did not verify with both keys offered")
                return
            }
            // After a rollover to the other key alone, neither signature passes with the wrong key.
            guard case .failed(let reason) = verifier().verify(bySecond, zone: "zone.test", keys: [firstKey]) else {
                Issue.record("a signature verified with another key of the same tag")
                return
            }
            #expect(reason.hasSuffix("signature does not verify"), "\(reason)")
            guard case .failed = verifier().verify(byFirst, zone: "zone.test", keys: [secondKey]) else {
                Issue.record("a signature verified with another key of the same tag")
                return
            }
        }
    }

    @Test func copiesShareTheDecodedKeyAndFreshRecordsDoNot() throws {
        let privateKey = P256.Signing.PrivateKey()
        let key = DNSKEYData(flags: 257, algorithm: 13, publicKey: Array(privateKey.publicKey.rawRepresentation))
        let copy = key
        let data: [UInt8] = Array("signed octets".utf8)
        let signature = Array(try privateKey.signature(for: data).rawRepresentation)
        #expect(throws: Never.self) { try copy.verify(algorithm: 13, signature: signature, data: data).get() }
        #expect(key.hasDecodedKey, "a copy (as kept in the zone trust cache) shares what was decoded")
        let refetched = try DNSKEYData(rdata: key.rdata)
        #expect(refetched == key)
        #expect(!refetched.hasDecodedKey, "a record decoded again starts empty")
        var flipped = signature
        flipped[5] ^= 1
        #expect(throws: DNSSECCrypto.Failure.badSignature) { try key.verify(algorithm: 13, signature: flipped, data: data).get() }
        #expect(throws: DNSSECCrypto.Failure.badSignature) { try key.verify(algorithm: 13, signature: [1, 2], data: data).get() }
        // The key is P-256: another algorithm number is refused, not verified with it.
        #expect(throws: DNSSECCrypto.Failure.unsupportedAlgorithm(14)) {
            try key.verify(algorithm: 14, signature: signature, data: data).get()
        }
    }

    /// A malformed key fails the same way every time, decoded once.
    @Test func malformedKeysFailOnceAndForAll() {
        let data: [UInt8] = [1, 2, 3]
        for (algorithm, publicKey) in [(UInt8(13), [UInt8](repeating: 7, count: 64)), (14, [1, 2, 3]), (15, [1]),
                                       (8, [3, 1, 0, 1] + [UInt8](repeating: 0xFF, count: 60)), (16, [1])] {
            let key = DNSKEYData(flags: 256, algorithm: algorithm, publicKey: publicKey)
            for _ in 0..<2 {
                #expect(throws: DNSSECCrypto.Failure.self, "algorithm \(algorithm)") {
                    try key.verify(algorithm: algorithm, signature: [1, 2, 3], data: data).get()
                }
            }
            #expect(key.hasDecodedKey)
        }
    }

    // MARK: - Verified-signature cache

    /// The cache key length-prefixes its parts: moving octets from the key to the signature
    /// (or the signature to the data) gives another entry.
    @Test func verifiedSignatureKeysDoNotCollideAcrossSplits() {
        let data: [UInt8] = [9, 9]
        #expect(VerifiedSignatureCache.key(publicKey: [1, 0], signature: [2], data: data)
            != VerifiedSignatureCache.key(publicKey: [1], signature: [0, 2], data: data))
        #expect(VerifiedSignatureCache.key(publicKey: [1], signature: [2, 0], data: [3])
            != VerifiedSignatureCache.key(publicKey: [1], signature: [2], data: [0, 3]))
        #expect(VerifiedSignatureCache.key(publicKey: [1], signature: [2], data: [3])
            == VerifiedSignatureCache.key(publicKey: [1], signature: [2], data: [3]))
    }

    /// The cache holds at most `capacity` entries and `maximumOctets` octets, oldest out
    /// first; an entry larger than the whole budget is not kept; a hit needs all three parts.
    @Test func verifiedSignatureCacheIsBounded() {
        let cache = VerifiedSignatureCache(capacity: 3, maximumOctets: 1000)
        let entries = (0..<5).map { VerifiedSignatureCache.key(publicKey: [1], signature: [UInt8($0)], data: [UInt8](repeating: 7, count: 98)) }
        for entry in entries { cache.insert(entry) }
        #expect(cache.count == 3)
        #expect(!cache.contains(entries[0]) && !cache.contains(entries[1]))
        #expect(cache.contains(entries[2]) && cache.contains(entries[4]))
        #expect(!cache.contains(VerifiedSignatureCache.key(publicKey: [2], signature: [4], data: [UInt8](repeating: 7, count: 98))),
                "another key with the same signature and data is no hit")
        #expect(!cache.contains(VerifiedSignatureCache.key(publicKey: [1], signature: [4], data: [UInt8](repeating: 8, count: 98))),
                "other data with the same signature is no hit")

        let small = VerifiedSignatureCache(capacity: 100, maximumOctets: 250)
        for entry in entries { small.insert(entry) }
        #expect(small.count == 2 && small.octets == 200)
        #expect(small.contains(entries[3]) && small.contains(entries[4]))
        small.insert(VerifiedSignatureCache.key(publicKey: [1], signature: [9], data: [UInt8](repeating: 0, count: 300)))
        #expect(small.count == 2, "an entry over the whole budget is not kept, and evicts nothing")
        #expect(VerifiedSignatureCache(capacity: 0).count == 0)
    }

    // MARK: - The synchronous pass for known zones

    /// Once every zone is trusted, `resolve` validates in one synchronous pass while a traced
    /// lookup takes the general (asynchronous) path: both give every question the same
    /// status and reason, for good answers and for tampered ones (a stripped RRSIG, a stripped
    /// denial or wildcard proof, a changed address under a valid signature).
    @Test func knownZonesGiveTheSameVerdictsWithoutSuspending() async throws {
        let tamper: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            var message = message
            switch question.name {
            case "www.example.test": message.answers.removeAll { $0.type == .rrsig }
            case "nothing.example.test", "nothing.nsec3.test": message.authority.removeAll { $0.type == .nsec || $0.type == .nsec3 }
            case "host.wild.example.test": message.authority.removeAll()
            case "deep.sub.nsec3.test":
                for index in message.answers.indices where message.answers[index].type == .a {
                    message.answers[index].data = .a(IPAddress("192.0.2.99")!)
                }
            default: break
            }
            return message
        }
        let questions: [(String, DNSRecordType)] = [
            ("www.example.test", .a), ("example.test", .mx), ("other.wild.example.test", .a), ("host.wild.example.test", .a),
            ("nothing.example.test", .a), ("example.test", .txt), ("alias.example.test", .a), ("www.nsec3.test", .a),
            ("nothing.nsec3.test", .a), ("deep.sub.nsec3.test", .a), ("www.unsigned.test", .a), ("nothing.unsigned.test", .a),
        ]
        try await DNSSECFixture().run(tamper: tamper) { resolver, _ in
            // Every zone trusted first, through names the tampering leaves alone.
            for name in ["mx.example.test", "www.nsec3.test", "www.unsigned.test"] {
                _ = await resolver.resolve(DNSQuestion(name: name, type: .a))
            }
            var statuses: Set<DNSSecurityStatus> = []
            for (name, type) in questions {
                let question = DNSQuestion(name: name, type: type)
                let known = await resolver.resolve(question)
                let (general, trace) = await resolver.resolveTracing(question)
                #expect(security(known) == security(general), "\(name)/\(type): \(trace)")
                #expect(errorKind(known) == errorKind(general), "\(name)/\(type)")
                if let status = security(known)?.status { statuses.insert(status) }
            }
            #expect(statuses == [.secure, .insecure, .bogus], "the questions cover every outcome but indeterminate")
            let broken = await resolver.resolve(DNSQuestion(name: "deep.sub.nsec3.test", type: .a))
            #expect(security(broken)?.reason?.hasSuffix("signature does not verify") == true, "\(String(describing: security(broken)))")
        }
    }
}
