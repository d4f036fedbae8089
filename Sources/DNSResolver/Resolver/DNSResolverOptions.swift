import DNS
import NIOCore

/// `[server.dns.options]`, with the semantics docs/dns-resolver.md gives. Defaults are vSMTP's.
public struct DNSResolverOptions: Hashable, Sendable {
    /// Bound on one exchange with the name servers (one pass).
    public var timeout: TimeAmount = .seconds(5)
    /// Retries after a failed pass: at most `1 + attempts` passes.
    public var attempts: Int = 2
    /// Rotate the order of multi-record answers between lookups.
    public var rotate: Bool = false
    /// DNSSEC validated in-process: DO and CD on every query, each answer secure, insecure,
    /// bogus or indeterminate; bogus and indeterminate answers are failures.
    public var validate: Bool = false
    /// Where chains of trust start when validating: the IANA root keys unless
    /// `trust_anchor_file` names others.
    public var trustAnchors: DNSTrustAnchors = .ianaRoot
    /// Work bounds per lookup against hostile zones.
    public var dnssecLimits: DNSSECLimits = DNSSECLimits()
    public var ipStrategy: IPStrategy = .ipv4ThenIpv6
    /// Cache entries (one per name, type and class).
    public var cacheSize: Int = 32
    /// Name servers asked at once; the first valid answer wins.
    public var numConcurrentReqs: Int = 2
    /// Keep the CNAME chain in results.
    public var preserveIntermediates: Bool = true

    public init() {}

    public init(timeout: TimeAmount = .seconds(5), attempts: Int = 2, rotate: Bool = false, validate: Bool = false,
                ipStrategy: IPStrategy = .ipv4ThenIpv6, cacheSize: Int = 32, numConcurrentReqs: Int = 2,
                preserveIntermediates: Bool = true, trustAnchors: DNSTrustAnchors = .ianaRoot) {
        self.timeout = timeout
        self.attempts = attempts
        self.rotate = rotate
        self.validate = validate
        self.ipStrategy = ipStrategy
        self.cacheSize = cacheSize
        self.numConcurrentReqs = numConcurrentReqs
        self.preserveIntermediates = preserveIntermediates
        self.trustAnchors = trustAnchors
    }
}

extension DNSResolverOptions {
    /// What zone files answer with in place of this resolver (`--zone`, a test's fixtures).
    public var zoneOptions: ZoneResolver.Options {
        ZoneResolver.Options(ipStrategy: self.ipStrategy, preservesIntermediates: self.preserveIntermediates)
    }
}
