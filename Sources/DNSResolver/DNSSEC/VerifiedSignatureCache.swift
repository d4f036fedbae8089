import Crypto
import NIOConcurrencyHelpers

/// Signatures already verified, so that an RRset seen again (the NSEC span that covers many
/// absent names, a wildcard's one signature behind every expansion, a DNSKEY set re-fetched)
/// is not verified again, as a validator's RRset cache does. Keyed by a SHA-256 over the key,
/// the signature and the signed octets: a hit means exactly these bytes verified before, so
/// it cannot be fooled by a changed record. Only successes are kept; the RRSIG's dates and
/// every other check are still made on each use. Least recently inserted evicted.
package final class VerifiedSignatureCache: Sendable {
    package let capacity: Int
    private let storage = NIOLockedValueBox((entries: Set<SHA256Digest>(), order: [SHA256Digest](), next: 0))

    package init(capacity: Int = 8192) { self.capacity = max(0, capacity) }

    package static func key(publicKey: [UInt8], signature: [UInt8], data: [UInt8]) -> SHA256Digest {
        // Each part's length before it, so that no two different splits hash alike. The lengths
        // go in one block and each part in one call (the hasher is updated in place, never
        // captured by a closure, which would make it copy its state on every update).
        var lengths: (UInt32, UInt32, UInt32) = (
            UInt32(truncatingIfNeeded: publicKey.count).bigEndian,
            UInt32(truncatingIfNeeded: signature.count).bigEndian,
            UInt32(truncatingIfNeeded: data.count).bigEndian
        )
        var hasher = SHA256()
        withUnsafeBytes(of: &lengths) { hasher.update(bufferPointer: $0) }
        publicKey.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        signature.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize()
    }

    package func contains(_ key: SHA256Digest) -> Bool {
        self.storage.withLockedValue { $0.entries.contains(key) }
    }

    package func insert(_ key: SHA256Digest) {
        guard self.capacity > 0 else { return }
        self.storage.withLockedValue { storage in
            guard storage.entries.insert(key).inserted else { return }
            if storage.order.count < self.capacity {
                storage.order.append(key)
            } else {
                storage.entries.remove(storage.order[storage.next])
                storage.order[storage.next] = key
                storage.next = (storage.next + 1) % self.capacity
            }
        }
    }

    package var count: Int { self.storage.withLockedValue { $0.entries.count } }
}
