/// The DNSSEC status the zone-file resolver gives its answers, marked per name with the
/// `$DNSSEC` directive (README.md, "DNSSEC in fixtures"): a mark covers its name and every name below
/// it, and the most specific mark wins, as a signed zone covers its names until an unsigned
/// delegation. Names without a mark are `insecure`, which is what an unvalidated answer is.
public struct ZoneSecurityMarks: Hashable, Sendable {
    /// Marks by normalised name (the root is `""`).
    public private(set) var byName: [String: DNSSecurity] = [:]

    public init() {}

    public var isEmpty: Bool { self.byName.isEmpty }

    /// Marks `name` and the names below it. Returns false when `name` already has a mark.
    @discardableResult
    public mutating func mark(_ name: String, _ security: DNSSecurity) -> Bool {
        guard self.byName[name] == nil else { return false }
        self.byName[name] = security
        return true
    }

    /// Adds the marks of `other`; a name marked in both keeps `other`'s.
    public mutating func merge(_ other: ZoneSecurityMarks) {
        self.byName.merge(other.byName) { _, new in new }
    }

    /// The status of answers about `name`: its own mark, else its closest marked ancestor's.
    public func security(of name: String) -> DNSSecurity {
        guard !self.byName.isEmpty else { return .insecure }
        var name = Substring(name)
        while true {
            if let security = self.byName[String(name)] { return security }
            guard !name.isEmpty else { return .insecure }
            if let dot = name.firstIndex(of: ".") { name = name[name.index(after: dot)...] } else { name = name[name.endIndex...] }
        }
    }

    /// The status of an answer that rests on every name of `owners` (a CNAME chain): bogus
    /// or indeterminate if one is, secure only if all are.
    public func security(ofChain owners: [String]) -> DNSSecurity {
        var combined = DNSSecurity.secure
        for owner in owners {
            let security = self.security(of: owner)
            switch security.status {
            case .bogus: return security
            case .indeterminate: combined = security
            case .insecure: if combined.status == .secure { combined = security }
            case .secure: break
            }
        }
        return combined
    }
}

/// A zone file's records and the DNSSEC status it marks.
public struct ZoneContents: Sendable {
    public var records: [DNSRecord]
    public var security: ZoneSecurityMarks

    public init(records: [DNSRecord] = [], security: ZoneSecurityMarks = ZoneSecurityMarks()) {
        self.records = records
        self.security = security
    }

    /// Adds another file's records and marks.
    public mutating func append(_ other: ZoneContents) {
        self.records += other.records
        self.security.merge(other.security)
    }
}
