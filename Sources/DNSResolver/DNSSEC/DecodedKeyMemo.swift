import NIOConcurrencyHelpers

/// Holds one DNSKEY's decoded public key (or why it cannot be decoded) once a verification
/// needed it. One per `DNSKEYData`, so it is bounded by the keys the validator keeps (the
/// zones in its trust cache) and keyed, in effect, by the key's full octets.
final class DecodedKeyMemo: Sendable {
    private let decoded = NIOLockedValueBox<Result<DNSSECPublicKey, DNSSECCrypto.Failure>?>(nil)

    init() {}

    /// The stored result, or `decode()`'s, stored. Two first uses at once may both decode;
    /// both get the same answer.
    func value(_ decode: () -> Result<DNSSECPublicKey, DNSSECCrypto.Failure>) -> Result<DNSSECPublicKey, DNSSECCrypto.Failure> {
        if let known = self.decoded.withLockedValue({ $0 }) { return known }
        let fresh = decode()
        self.decoded.withLockedValue { $0 = fresh }
        return fresh
    }

    /// Whether a decode has been stored (for tests of the reuse).
    var isFilled: Bool { self.decoded.withLockedValue { $0 != nil } }
}

extension DNSKEYData {
    /// This key decoded for swift-crypto, decoded at most once per record (see `DecodedKeyMemo`).
    package var decodedKey: Result<DNSSECPublicKey, DNSSECCrypto.Failure> {
        self.decodedKeyMemo.value { DNSSECPublicKey.decode(algorithm: self.algorithm, publicKey: self.publicKey) }
    }

    /// True once `decodedKey` has been computed for this record (or a copy of it).
    package var hasDecodedKey: Bool { self.decodedKeyMemo.isFilled }

    /// Verifies `signature` over `data` with this key, decoding it on first use only.
    package func verify(algorithm: UInt8, signature: [UInt8], data: [UInt8]) -> Result<Void, DNSSECCrypto.Failure> {
        switch self.decodedKey {
        case .failure(let failure): return .failure(failure)
        case .success(let key): return key.verify(algorithm: algorithm, signature: signature, data: data)
        }
    }
}
