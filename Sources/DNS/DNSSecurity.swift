/// What DNSSEC validation concluded about one answer (RFC 4033 §5, RFC 4035 §4.3).
public enum DNSSecurityStatus: String, Hashable, Sendable, CaseIterable {
    /// A chain of signatures from a trust anchor down to the answer (or its denial) holds.
    case secure
    /// Validation is off, or the answer lies below a proven unsigned delegation, or every
    /// DS on the way uses an algorithm or digest that is not supported.
    case insecure
    /// The answer should be signed and its signatures or proofs do not hold.
    case bogus
    /// The records needed to decide (DS, DNSKEY) could not be fetched.
    case indeterminate
}

/// The security status of an answer, with the reason a person can act on when it is not
/// secure for a cause other than validation being off.
public struct DNSSecurity: Hashable, Sendable, CustomStringConvertible {
    public var status: DNSSecurityStatus
    /// Why the answer is bogus, indeterminate or insecure ("RRSIG expired 2026-11-20 for
    /// example.com/MX", "no DS matches DNSKEY of example.com", "unsigned delegation at x.test").
    public var reason: String?

    public init(_ status: DNSSecurityStatus, reason: String? = nil) {
        self.status = status
        self.reason = reason
    }

    /// What every answer carries when validation is off.
    public static let insecure = DNSSecurity(.insecure)
    public static let secure = DNSSecurity(.secure)

    public var description: String {
        guard let reason = self.reason else { return self.status.rawValue }
        return "\(self.status.rawValue) (\(reason))"
    }
}
