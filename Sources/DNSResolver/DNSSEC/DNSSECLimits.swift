import NIOConcurrencyHelpers

/// Bounds on the work one lookup may cause, against hostile zones (KeyTrap,
/// CVE-2023-50387; NSEC3 hash floods, CVE-2023-50868). A zone that exceeds them is bogus.
public struct DNSSECLimits: Hashable, Sendable {
    /// Keys with the same tag and algorithm tried for one signature (Unbound allows 4).
    public var keysPerKeyTag: Int = 4
    /// Signatures tried for one RRset before it is declared bogus.
    public var signaturesPerRRset: Int = 8
    /// Signature verifications (and DS digests) per lookup, the chain of trust included.
    public var validationsPerLookup: Int = 64
    /// NSEC3 hash computations per lookup (each at most `maximumNSEC3Iterations` + 1 SHA-1).
    public var nsec3HashesPerLookup: Int = 64
    /// RFC 9276 §3.2: above this, NSEC3 proofs are treated as insecure, as Unbound does.
    public var maximumNSEC3Iterations: Int = 150

    public init() {}
}

/// What one lookup has spent of its `DNSSECLimits`. Shared by the chain-of-trust fetches the
/// lookup starts, so the bound is per lookup, not per step.
package final class ValidationBudget: Sendable {
    package let limits: DNSSECLimits
    private let spent = NIOLockedValueBox((validations: 0, hashes: 0))

    package init(limits: DNSSECLimits) { self.limits = limits }

    /// Takes one verification; false once the lookup has used them all.
    package func takeValidation() -> Bool {
        self.spent.withLockedValue { spent in
            guard spent.validations < self.limits.validationsPerLookup else { return false }
            spent.validations += 1
            return true
        }
    }

    /// Takes one NSEC3 hash; false once the lookup has used them all.
    package func takeHash() -> Bool {
        self.spent.withLockedValue { spent in
            guard spent.hashes < self.limits.nsec3HashesPerLookup else { return false }
            spent.hashes += 1
            return true
        }
    }

    package var validationsSpent: Int { self.spent.withLockedValue { $0.validations } }
    package var hashesSpent: Int { self.spent.withLockedValue { $0.hashes } }
}
