import Crypto
import _CryptoExtras

/// Signature verification and DS digests through swift-crypto (BoringSSL underneath).
package enum DNSSECCrypto {
    /// RSA keys accepted: RFC 3110 allows 512 to 4096 bits; under 1024 is broken (RFC 8624).
    package static let rsaBits = 1024...4096

    /// Why a signature did not verify, in words for reasons and traces.
    package enum Failure: Error, Equatable, Sendable {
        case unsupportedAlgorithm(UInt8)
        case badKey(String)
        case badSignature
    }

    /// Verifies `signature` over `data` with a DNSKEY's public key, decoded for this one check
    /// (the validator keeps decoded keys with their DNSKEY: `DNSKEYData.decodedKey`).
    package static func verify(algorithm number: UInt8, publicKey: [UInt8], signature: [UInt8],
                               data: [UInt8]) -> Result<Void, Failure> {
        switch DNSSECPublicKey.decode(algorithm: number, publicKey: publicKey) {
        case .failure(let failure): return .failure(failure)
        case .success(let key): return key.verify(algorithm: number, signature: signature, data: data)
        }
    }

    /// The DS digest of a key (RFC 4034 §5.1.4): over the owner's canonical name and the
    /// DNSKEY data. Nil for a digest type that is not supported.
    package static func dsDigest(owner: String, key: DNSKEYData, digestType: UInt8) -> [UInt8]? {
        guard let type = DSDigestType(rawValue: digestType),
              let name = try? DNSCanonicalForm.name(owner) else { return nil }
        let input = name + key.rdata
        switch type {
        case .sha1: return Array(Insecure.SHA1.hash(data: input))
        case .sha256: return Array(SHA256.hash(data: input))
        case .sha384: return Array(SHA384.hash(data: input))
        }
    }

    /// The NSEC3 hash (RFC 5155 §5): SHA-1 of the name and salt, iterated.
    package static func nsec3Hash(name: String, salt: [UInt8], iterations: Int) -> [UInt8]? {
        guard let wire = try? DNSCanonicalForm.name(name) else { return nil }
        var digest = Array(Insecure.SHA1.hash(data: wire + salt))
        var remaining = iterations
        while remaining > 0 {
            digest = Array(Insecure.SHA1.hash(data: digest + salt))
            remaining -= 1
        }
        return digest
    }
}
