/// A DNS RR type. A struct rather than an enum so that unknown types survive parsing.
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let ns = DNSRecordType(rawValue: 2)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let soa = DNSRecordType(rawValue: 6)
    public static let ptr = DNSRecordType(rawValue: 12)
    public static let mx = DNSRecordType(rawValue: 15)
    public static let txt = DNSRecordType(rawValue: 16)
    public static let aaaa = DNSRecordType(rawValue: 28)
    public static let srv = DNSRecordType(rawValue: 33)
    public static let opt = DNSRecordType(rawValue: 41)
    public static let ds = DNSRecordType(rawValue: 43)
    public static let rrsig = DNSRecordType(rawValue: 46)
    public static let nsec = DNSRecordType(rawValue: 47)
    public static let dnskey = DNSRecordType(rawValue: 48)
    public static let nsec3 = DNSRecordType(rawValue: 50)
    public static let nsec3param = DNSRecordType(rawValue: 51)

    static let names: [(String, DNSRecordType)] = [
        ("A", .a), ("NS", .ns), ("CNAME", .cname), ("SOA", .soa), ("PTR", .ptr), ("MX", .mx),
        ("TXT", .txt), ("AAAA", .aaaa), ("SRV", .srv), ("OPT", .opt), ("DS", .ds),
        ("RRSIG", .rrsig), ("NSEC", .nsec), ("DNSKEY", .dnskey), ("NSEC3", .nsec3), ("NSEC3PARAM", .nsec3param),
    ]

    /// Parses `MX`, `mx` or the RFC 3597 form `TYPE15`.
    public init?(name: String) {
        let upper = name.uppercased()
        if let found = Self.names.first(where: { $0.0 == upper }) {
            self = found.1
        } else if upper.hasPrefix("TYPE"), let value = UInt16(upper.dropFirst(4)) {
            self.init(rawValue: value)
        } else {
            return nil
        }
    }

    public var description: String {
        Self.names.first(where: { $0.1 == self })?.0 ?? "TYPE\(self.rawValue)"
    }
}

public struct SOAData: Hashable, Sendable {
    public var mname: String
    public var rname: String
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32
    public init(mname: String, rname: String, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// The data of one resource record. Names are normalised (lower case, no trailing dot);
/// the root name is the empty string, as in a Null MX exchange.
public enum DNSRecordData: Hashable, Sendable {
    case a(IPAddress)
    case aaaa(IPAddress)
    case ns(String)
    case cname(String)
    case ptr(String)
    case mx(preference: UInt16, exchange: String)
    case txt([[UInt8]])
    case soa(SOAData)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    case unknown(type: DNSRecordType, data: [UInt8])

    public var type: DNSRecordType {
        switch self {
        case .a: return .a
        case .aaaa: return .aaaa
        case .ns: return .ns
        case .cname: return .cname
        case .ptr: return .ptr
        case .mx: return .mx
        case .txt: return .txt
        case .soa: return .soa
        case .srv: return .srv
        case .unknown(let type, _): return type
        }
    }
}

public struct DNSRecord: Hashable, Sendable {
    public var name: String
    public var ttl: UInt32
    public var data: DNSRecordData
    public var type: DNSRecordType { self.data.type }

    public init(name: String, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.ttl = ttl
        self.data = data
    }
}

extension DNSRecord {
    /// The longest a record is believed: a TTL over a day is read as a day by both resolvers,
    /// in the answers they hand out and in the network resolver's cache (Unbound's
    /// `cache-max-ttl` default). A server that sends 68 years, by mistake or to keep a lie
    /// alive, is asked again the next day.
    public static let maximumTTL: UInt32 = 86_400
    /// The longest an NXDOMAIN or NODATA answer is cached: an hour (RFC 2308 §5 advises one to
    /// three; Unbound's `cache-max-negative-ttl` default), whatever the SOA says.
    public static let maximumNegativeTTL: UInt32 = 3_600

    /// This record with its TTL at most `maximumTTL`.
    public var believed: DNSRecord {
        guard self.ttl > Self.maximumTTL else { return self }
        var record = self
        record.ttl = Self.maximumTTL
        return record
    }
}
