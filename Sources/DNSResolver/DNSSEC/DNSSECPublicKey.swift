import Crypto
import _CryptoExtras

/// A DNSKEY's public key decoded once into swift-crypto's key object, so that a key used for
/// many signatures (a zone's signing key, cached with the zone's trust) is not decoded again
/// for each: for RSA that means building a DER structure and parsing it, for ECDSA checking
/// that the point is on the curve.
package enum DNSSECPublicKey: Sendable {
    case rsa(_RSA.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    /// Decodes the key field of a DNSKEY of `algorithm` (RFC 3110, RFC 6605, RFC 8080).
    package static func decode(algorithm number: UInt8, publicKey: [UInt8]) -> Result<DNSSECPublicKey, DNSSECCrypto.Failure> {
        guard let algorithm = DNSSECAlgorithm(rawValue: number) else { return .failure(.unsupportedAlgorithm(number)) }
        switch algorithm {
        case .rsaSHA1, .rsaSHA1NSEC3, .rsaSHA256, .rsaSHA512:
            guard let parts = RSAPublicKeyDER.parts(publicKey) else { return .failure(.badKey("malformed RSA key")) }
            guard DNSSECCrypto.rsaBits.contains(parts.modulusBits) else {
                return .failure(.badKey("RSA key of \(parts.modulusBits) bits"))
            }
            guard let der = try? RSAPublicKeyDER.der(parts),
                  let key = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: der) else {
                return .failure(.badKey("RSA key rejected by the crypto library"))
            }
            return .success(.rsa(key))
        case .ecdsaP256SHA256:
            guard let key = try? P256.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed P-256 key"))
            }
            return .success(.p256(key))
        case .ecdsaP384SHA384:
            guard let key = try? P384.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed P-384 key"))
            }
            return .success(.p384(key))
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else {
                return .failure(.badKey("malformed Ed25519 key"))
            }
            return .success(.ed25519(key))
        }
    }

    /// Checks `signature` over `data` as `algorithm` prescribes (its digest; for ECDSA the
    /// raw r‖s form DNSSEC uses, no DER). The algorithm must be the key's own: a DNSKEY and
    /// the RRSIG checked with it name the same algorithm.
    package func verify(algorithm number: UInt8, signature: [UInt8], data: [UInt8]) -> Result<Void, DNSSECCrypto.Failure> {
        switch self {
        case .rsa(let key):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let valid: Bool
            switch DNSSECAlgorithm(rawValue: number) {
            case .rsaSHA1?, .rsaSHA1NSEC3?:
                valid = key.isValidSignature(rsaSignature, for: Insecure.SHA1.hash(data: data), padding: .insecurePKCS1v1_5)
            case .rsaSHA256?:
                valid = key.isValidSignature(rsaSignature, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .rsaSHA512?:
                valid = key.isValidSignature(rsaSignature, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            default:
                return .failure(.unsupportedAlgorithm(number))
            }
            return valid ? .success(()) : .failure(.badSignature)
        case .p256(let key):
            guard number == DNSSECAlgorithm.ecdsaP256SHA256.rawValue else { return .failure(.unsupportedAlgorithm(number)) }
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return .failure(.badSignature)
            }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: data)) ? .success(()) : .failure(.badSignature)
        case .p384(let key):
            guard number == DNSSECAlgorithm.ecdsaP384SHA384.rawValue else { return .failure(.unsupportedAlgorithm(number)) }
            guard let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else {
                return .failure(.badSignature)
            }
            return key.isValidSignature(ecdsa, for: SHA384.hash(data: data)) ? .success(()) : .failure(.badSignature)
        case .ed25519(let key):
            guard number == DNSSECAlgorithm.ed25519.rawValue else { return .failure(.unsupportedAlgorithm(number)) }
            return key.isValidSignature(signature, for: data) ? .success(()) : .failure(.badSignature)
        }
    }
}
