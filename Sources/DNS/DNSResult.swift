/// What a name server said about one name and type. "Does not exist" and "no data"
/// are answers, not errors: only transient failures are `DNSError`s.
public enum DNSOutcome: String, Hashable, Sendable {
    case ok
    case nxdomain
    case nodata
}

public struct DNSAnswer: Hashable, Sendable {
    /// The name asked for, normalised.
    public var name: String
    public var type: DNSRecordType
    public var outcome: DNSOutcome
    /// Records of the asked type, owned by the end of the CNAME chain.
    public var records: [DNSRecord]
    /// The CNAME records followed from `name` to the owner of `records`, in order.
    public var chain: [DNSRecord]
    /// What DNSSEC validation concluded; `.insecure` when validation is off.
    public var security: DNSSecurity
    /// True only when the answer validated as DNSSEC-secure.
    public var secure: Bool { self.security.status == .secure }
    /// The server that answered (`"zone"` for the zone-file resolver), for diagnostics.
    public var server: String?

    public init(name: String, type: DNSRecordType, outcome: DNSOutcome, records: [DNSRecord] = [],
                chain: [DNSRecord] = [], security: DNSSecurity = .insecure, server: String? = nil) {
        self.name = name
        self.type = type
        self.outcome = outcome
        self.records = records
        self.chain = chain
        self.security = security
        self.server = server
    }
}

/// A transient DNS failure: the question could not be answered now. Rules see it as a
/// typed Lua error; uncaught it defers the stage with 451 4.4.3.
public struct DNSError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        case timeout
        case servfail
        case refused
        case network
        case bogus
        case formerr
    }

    public var kind: Kind
    public var name: String
    public var type: DNSRecordType
    public var detail: String?
    /// True when the resolver gave up only because the lookup's whole time bound,
    /// `(1 + attempts) × timeout`, had run out. A plan that would ask the same servers a
    /// second question for the same lookup (`dns.lookup`'s other address family) stops
    /// instead, so that a dead server costs one bound, not two.
    public var usedWholeTimeBound: Bool
    /// Set when DNSSEC validation is why the lookup failed: `.bogus`, or `.indeterminate`
    /// when the DS or DNSKEY records could not be fetched (the kind is then the fetch's own).
    public var security: DNSSecurity?

    public init(kind: Kind, name: String, type: DNSRecordType, detail: String? = nil, usedWholeTimeBound: Bool = false,
                security: DNSSecurity? = nil) {
        self.kind = kind
        self.name = name
        self.type = type
        self.detail = detail
        self.usedWholeTimeBound = usedWholeTimeBound
        self.security = security
    }

    public var description: String {
        let base = "DNS \(self.kind.rawValue) for \(self.name.isEmpty ? "." : self.name)/\(self.type)"
        if let detail = self.detail { return "\(base): \(detail)" }
        return base
    }
}

/// A name and a record type, the key of the resolver's cache, its table of lookups in flight
/// and the SPF memos. Hashed once, when made: a question is looked up several times on its
/// way (cache, lookups in flight, the entry evicted for it), 8.5 times per question to the
/// network, and hashed its name each time.
public struct DNSQuestion: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let type: DNSRecordType
    private let hashCode: Int

    public init(name: String, type: DNSRecordType) {
        self.name = name
        self.type = type
        var hasher = Hasher()
        hasher.combine(name)
        hasher.combine(type)
        self.hashCode = hasher.finalize()
    }

    public static func == (lhs: DNSQuestion, rhs: DNSQuestion) -> Bool {
        lhs.hashCode == rhs.hashCode && lhs.type == rhs.type && lhs.name == rhs.name
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.hashCode)
    }

    public var description: String { "\(self.name.isEmpty ? "." : self.name)/\(self.type)" }
}

public typealias DNSQueryResult = Result<DNSAnswer, DNSError>
