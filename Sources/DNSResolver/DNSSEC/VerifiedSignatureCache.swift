import NIOConcurrencyHelpers
import NIOCore

/// Signatures already verified, so that an RRset seen again (the NSEC span that covers many
/// absent names, a wildcard's one signature behind every expansion, a DNSKEY set re-fetched)
/// is not verified again, as a validator's RRset cache does. An entry is the key, the
/// signature and the signed octets themselves, compared in full: a hit means exactly these
/// bytes verified before, so it cannot be fooled by a changed record (nor by a hash
/// collision: only the table's bucket comes from a hash, of the signature, with Swift's
/// per-process random seed). Only successes are kept; the RRSIG's dates and every other check
/// are still made on each use. Bounded by entries and by octets held; oldest evicted first.
package final class VerifiedSignatureCache: Sendable {
    /// One verified signature: what was checked, octet for octet.
    package struct Entry: Hashable, Sendable {
        package let publicKey: [UInt8]
        package let signature: [UInt8]
        package let data: [UInt8]

        /// The signature alone spreads entries well (it is a random-looking value per signed
        /// set); equality still compares all three parts.
        package func hash(into hasher: inout Hasher) {
            self.signature.withUnsafeBytes { hasher.combine(bytes: $0) }
            hasher.combine(self.data.count)
        }

        var octets: Int { self.publicKey.count + self.signature.count + self.data.count }
    }

    package let capacity: Int
    package let maximumOctets: Int
    private let storage = NIOLockedValueBox((entries: Set<Entry>(), order: CircularBuffer<Entry>(), octets: 0))

    package init(capacity: Int = 8192, maximumOctets: Int = 4 << 20) {
        self.capacity = max(0, capacity)
        self.maximumOctets = max(0, maximumOctets)
    }

    package static func key(publicKey: [UInt8], signature: [UInt8], data: [UInt8]) -> Entry {
        Entry(publicKey: publicKey, signature: signature, data: data)
    }

    package func contains(_ key: Entry) -> Bool {
        self.storage.withLockedValue { $0.entries.contains(key) }
    }

    package func insert(_ key: Entry) {
        let octets = key.octets
        guard self.capacity > 0, octets <= self.maximumOctets else { return }
        self.storage.withLockedValue { storage in
            guard storage.entries.insert(key).inserted else { return }
            storage.order.append(key)
            storage.octets += octets
            while storage.order.count > self.capacity || storage.octets > self.maximumOctets,
                  let oldest = storage.order.popFirst() {
                storage.entries.remove(oldest)
                storage.octets -= oldest.octets
            }
        }
    }

    package var count: Int { self.storage.withLockedValue { $0.entries.count } }
    /// Octets held by the entries (keys, signatures and signed data).
    package var octets: Int { self.storage.withLockedValue { $0.octets } }
}
