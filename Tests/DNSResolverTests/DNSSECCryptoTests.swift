import Crypto
import DNS
import Foundation
import Testing
import _CryptoExtras
@testable import DNSResolver

/// Signature and digest vectors from RFC 6605 §6 (ECDSA P-256, P-384) and RFC 8080 §6
/// (Ed25519), as quoted in Debian's golang-github-miekg-dns-dev (dnssec_test.go), and RSA
/// with keys made in the test.
@Suite struct DNSSECCryptoTests {
    struct Vector {
        var dnskey: String
        var ds: String
        var record: String
        var rrsig: (type: DNSRecordType, algorithm: UInt8, labels: UInt8, ttl: UInt32, expiration: String,
                    inception: String, keyTag: UInt16, signer: String, signature: String)
    }

    static func zone(_ text: String) throws -> [DNSRecord] { try ZoneFile.parse(text, origin: "") }

    static func time(_ text: String) -> UInt32 {
        if let seconds = DNSSECTime.parse(text) { return UInt32(seconds) }
        return UInt32(text)!
    }

    static let p256 = Vector(
        dnskey: "example.net. 3600 IN DNSKEY 257 3 13 ( GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edb\n krSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA== )",
        ds: "example.net. 3600 IN DS 55648 13 2 ( b4c8c1fe2e7477127b27115656ad6256f424625bf5c1\n e2770ce6d6e37df61d17 )",
        record: "www.example.net. 3600 IN A 192.0.2.1",
        rrsig: (.a, 13, 3, 3600, "20100909100439", "20100812100439", 55648, "example.net",
                "qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw=="))

    static let p384 = Vector(
        dnskey: "example.net. 3600 IN DNSKEY 257 3 14 ( xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1\n w/egsXvSADtNJhyem5RCOpgQ6K8X1DRSEkrbYQ+OB+v8\n /uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40 )",
        ds: "example.net. 3600 IN DS 10771 14 4 ( 72d7b62976ce06438e9c0bf319013cf801f09ecc84b8\n d7e9495f27e305c6a9b0563a9b5f4d288405c3008a94\n 6df983d6 )",
        record: "www.example.net. 3600 IN A 192.0.2.1",
        rrsig: (.a, 14, 3, 3600, "20100909102025", "20100812102025", 10771, "example.net",
                "/L5hDKIvGDyI1fcARX3z65qrmPsVz73QD1Mr5CEqOiLP95hxQouuroGCeZOvzFaxsT8Glr74hbavRKayJNuydCuzWTSSPdz7wnqXL5bdcJzusdnI0RSMROxxwGipWcJm"))

    static let ed25519First = Vector(
        dnskey: "example.com. 3600 IN DNSKEY 257 3 15 ( l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= )",
        ds: "example.com. 3600 IN DS 3613 15 2 ( 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79\n a304b )",
        record: "example.com. 3600 IN MX 10 mail.example.com.",
        rrsig: (.mx, 15, 2, 3600, "1440021600", "1438207200", 3613, "example.com",
                "oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg=="))

    static let ed25519Second = Vector(
        dnskey: "example.com. 3600 IN DNSKEY 257 3 15 ( zPnZ/QwEe7S8C5SPz2OfS5RR40ATk2/rYnE9xHIEijs= )",
        ds: "example.com. 3600 IN DS 35217 15 2 ( 401781b934e392de492ec77ae2e15d70f6575a1c0bc59c5275c04ebe80c\n 6614c )",
        record: "example.com. 3600 IN MX 10 mail.example.com.",
        rrsig: (.mx, 15, 2, 3600, "1440021600", "1438207200", 35217, "example.com",
                "zXQ0bkYgQTEFyfLyi9QoiY6D8ZdYo4wyUhVioYZXFdT410QPRITQSqJSnzQoSm5poJ7gD7AQR0O7KuI5k2pcBg=="))

    static func check(_ vector: Vector, _ label: Comment) throws {
        let keyRecord = try #require(try Self.zone(vector.dnskey).first)
        let key = try DNSKEYData(rdata: try #require(keyRecord.data.rawData))
        let ds = try DSData(rdata: try #require(try Self.zone(vector.ds).first?.data.rawData))
        #expect(key.keyTag == vector.rrsig.keyTag, label)
        #expect(ds.keyTag == key.keyTag, label)
        #expect(DNSSECCrypto.dsDigest(owner: keyRecord.name, key: key, digestType: ds.digestType) == ds.digest, label)

        let record = try #require(try Self.zone(vector.record).first)
        let rrsig = RRSIGData(typeCovered: vector.rrsig.type, algorithm: vector.rrsig.algorithm, labels: vector.rrsig.labels,
                              originalTTL: vector.rrsig.ttl, expiration: Self.time(vector.rrsig.expiration),
                              inception: Self.time(vector.rrsig.inception), keyTag: vector.rrsig.keyTag,
                              signerName: vector.rrsig.signer,
                              signature: try #require(Base64Text.decode(Array(vector.rrsig.signature.utf8))))
        let data = try DNSCanonicalForm.signedData(rrsig: rrsig, owner: record.name, type: record.type, recordClass: 1,
                                                   records: [record.data])
        #expect(throws: Never.self, label) {
            try DNSSECCrypto.verify(algorithm: rrsig.algorithm, publicKey: key.publicKey, signature: rrsig.signature, data: data).get()
        }
        // One flipped bit in the signature, the data or the key: no longer valid.
        var badSignature = rrsig.signature
        badSignature[5] ^= 0x01
        var badData = data
        badData[badData.count - 1] ^= 0x01
        var badKey = key.publicKey
        badKey[3] ^= 0x80
        for (signature, signed, publicKey) in [(badSignature, data, key.publicKey), (rrsig.signature, badData, key.publicKey),
                                               (rrsig.signature, data, badKey)] {
            let result = DNSSECCrypto.verify(algorithm: rrsig.algorithm, publicKey: publicKey, signature: signature, data: signed)
            #expect(throws: DNSSECCrypto.Failure.self, label) { try result.get() }
        }

        // Through the RRSIG checks: valid inside the window, dated reasons outside it.
        let set = SignedRRset(owner: record.name, type: record.type,
                              records: [DNSResourceRecord(name: record.name, ttl: record.ttl, data: record.data)],
                              signatures: [rrsig])
        let middle = (Int64(rrsig.inception) + Int64(rrsig.expiration)) / 2
        let verifier = RRsetVerifier(budget: ValidationBudget(limits: DNSSECLimits()), now: middle, trace: nil)
        guard case .verified = verifier.verify(set, zone: vector.rrsig.signer, keys: [key]) else {
            Issue.record("RRsetVerifier rejected the RFC example (\(label))")
            return
        }
        let late = RRsetVerifier(budget: ValidationBudget(limits: DNSSECLimits()), now: Int64(rrsig.expiration) + 1, trace: nil)
        guard case .failed(let reason) = late.verify(set, zone: vector.rrsig.signer, keys: [key]) else {
            Issue.record("an expired signature verified (\(label))")
            return
        }
        #expect(reason.hasPrefix("RRSIG expired \(DNSSECTime.format(unixSeconds: Int64(rrsig.expiration))) for"), label)
    }

    @Test func rfc6605P256() throws { try Self.check(Self.p256, "RFC 6605 P-256") }
    @Test func rfc6605P384() throws { try Self.check(Self.p384, "RFC 6605 P-384") }
    @Test func rfc8080Ed25519() throws {
        try Self.check(Self.ed25519First, "RFC 8080 example 1")
        try Self.check(Self.ed25519Second, "RFC 8080 example 2")
    }

    @Test func rrsigDatesParseAndPrint() {
        #expect(DNSSECTime.parse("20100909100439") == 1_284_026_679)
        #expect(DNSSECTime.format(unixSeconds: 1_284_026_679) == "2010-09-09T10:04:39Z")
        #expect(DNSSECTime.format(unixSeconds: 1_795_132_800) == "2026-11-20T00:00:00Z")
        // Serial arithmetic: a timestamp just past the 2^32 wrap is after one just before it.
        #expect(DNSSECTime.isBefore(0xFFFF_FFF0, 0x0000_0010))
        #expect(!DNSSECTime.isBefore(0x0000_0010, 0xFFFF_FFF0))
    }

    /// RSA/SHA-256 (algorithm 8) and RSA/SHA-1 (5) with 1024- and 2048-bit keys made here:
    /// the DNSKEY carries the RFC 3110 form, the verifier rebuilds the DER key from it.
    @Test(arguments: [1024, 2048])
    func rsa(bits: Int) throws {
        let privateKey = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits))
        let primitives = try privateKey.publicKey.getKeyPrimitives()
        let exponent = [UInt8](primitives.publicExponent)
        let modulus = [UInt8](primitives.modulus)
        let publicKey = [UInt8(exponent.count)] + exponent + modulus
        let data = Array("the data an RRSIG covers".utf8)
        for (algorithm, signature) in [
            (UInt8(8), try privateKey.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)),
            (UInt8(5), try privateKey.signature(for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)),
            (UInt8(10), try privateKey.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)),
        ] {
            let bytes = [UInt8](signature.rawRepresentation)
            #expect(throws: Never.self) {
                try DNSSECCrypto.verify(algorithm: algorithm, publicKey: publicKey, signature: bytes, data: data).get()
            }
            var flipped = bytes
            flipped[10] ^= 0x04
            #expect(throws: DNSSECCrypto.Failure.badSignature) {
                try DNSSECCrypto.verify(algorithm: algorithm, publicKey: publicKey, signature: flipped, data: data).get()
            }
        }
        #expect(RSAPublicKeyDER.parts(publicKey)?.modulusBits == bits)
    }

    @Test func hostileKeysAreRejectedNotTrapped() {
        let data: [UInt8] = [1, 2, 3]
        // RSA: empty, exponent longer than the key, a 512-bit modulus, the 3-octet length form.
        for key: [UInt8] in [[], [200, 1, 2], [1, 3] + Array(repeating: 0xFF, count: 64), [0, 0xFF, 0xFF, 1]] {
            #expect(throws: DNSSECCrypto.Failure.self) {
                try DNSSECCrypto.verify(algorithm: 8, publicKey: key, signature: [1], data: data).get()
            }
        }
        #expect(throws: DNSSECCrypto.Failure.self) {
            try DNSSECCrypto.verify(algorithm: 13, publicKey: [1, 2, 3], signature: [], data: data).get()
        }
        #expect(throws: DNSSECCrypto.Failure.unsupportedAlgorithm(16)) {
            try DNSSECCrypto.verify(algorithm: 16, publicKey: [1], signature: [1], data: data).get()
        }
        #expect(DNSSECCrypto.dsDigest(owner: "x", key: DNSKEYData(flags: 257, algorithm: 13, publicKey: [1]), digestType: 3) == nil)
    }

    @Test func rootAnchorDigestsMatchDebiansRootDS() {
        // /usr/share/dns/root.ds from dns-root-data.
        let expected: [UInt16: String] = [
            20326: "e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d",
            38696: "683d2d0acb8c9b712a1948b27f741219298d0a450d612c483af444a4c0fb2b16",
        ]
        for key in DNSTrustAnchors.builtInRootKeys {
            let digest = DNSSECCrypto.dsDigest(owner: "", key: key, digestType: 2) ?? []
            #expect(digest.map { String(format: "%02x", $0) }.joined() == expected[key.keyTag])
        }
    }
}
