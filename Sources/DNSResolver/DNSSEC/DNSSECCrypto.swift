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

    /// Verifies `signature` over `data` with a DNSKEY's public key.
    package static func verify(algorithm number: UInt8, publicKey: [UInt8], signature: [UInt8],
                               data: [UInt8]) -> Result<Void, Failure> {
        guard let algorithm = DNSSECAlgorithm(rawValue: number) else { return .failure(.unsupportedAlgorithm(number)) }
        switch algorithm {
        case .rsaSHA1, .rsaSHA1NSEC3, .rsaSHA256, .rsaSHA512:
            guard let parts = RSAPublicKeyDER.parts(publicKey) else { return .failure(.badKey("malformed RSA key")) }
            guard Self.rsaBits.contains(parts.modulusBits) else {
                return .failure(.badKey("RSA key of \(parts.modulusBits) bits"))
            }
            guard let der = try? RSAPublicKeyDER.der(parts),
                  let key = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: der) else {
                return .failure(.badKey("RSA key rejected by the crypto library"))
            }
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let valid: Bool
            switch algorithm {
            case .rsaSHA1, .rsaSHA1NSEC3:
                valid = key.isValidSignature(rsaSignature, for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
            case .rsaSHA256:
                valid = key.isValidSignature(rsaSignature, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            default:
                valid = key.isValidSignature(rsaSignature, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            }
            return valid ? .success(()) : .failure(.badSignature)
        case .ecdsaP256SHA256:
            guard let key = try? P256.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed P-256 key"))
            }
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return .failure(.badSignature)
            }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: data)) ? .success(()) : .failure(.badSignature)
        case .ecdsaP384SHA384:
            guard let key = try? P384.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed P-384 key"))
            }
            guard let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else {
                return .failure(.badSignature)
            }
            return key.isValidSignature(ecdsa, for: SHA384.hash(data: data)) ? .success(()) : .failure(.badSignature)
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed Ed25519 key"))
            }
            return key.isValidSignature(signature, for: data) ? .success(()) : .failure(.badSignature)
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
