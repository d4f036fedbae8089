/// DNS blocklists (RFC 5782), read so that a list's error codes never count as listings.
///
/// RFC 5782 says any A record means "listed", and that reading has rejected all mail many
/// times over: Spamhaus answers 127.255.255.254 to queries through public resolvers, an
/// expired list domain wildcards every name, URIBL answers 127.0.0.1 when it refuses. Here
/// an answer is `listed` only when its codes are the zone's documented listings; the zone's
/// error codes are `refused`, and anything outside 127.0.0.0/8 is `error`.

/// An inclusive range of IPv4 addresses, written `127.0.0.2`, `127.0.0.2-127.0.0.11` or
/// `127.255.255.0/24`.
public struct IPv4Range: Hashable, Sendable, CustomStringConvertible {
    public var first: UInt32
    public var last: UInt32

    public init(first: UInt32, last: UInt32) {
        self.first = first
        self.last = last
    }

    public init?(_ text: String) {
        if let dash = text.firstIndex(of: "-") {
            guard let first = Self.address(text[..<dash]), let last = Self.address(text[text.index(after: dash)...]),
                  first <= last else { return nil }
            self.init(first: first, last: last)
        } else if let slash = text.firstIndex(of: "/") {
            guard let base = Self.address(text[..<slash]), let bits = UInt32(text[text.index(after: slash)...]),
                  bits <= 32 else { return nil }
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            self.init(first: base & mask, last: (base & mask) | ~mask)
        } else {
            guard let address = Self.address(Substring(text)) else { return nil }
            self.init(first: address, last: address)
        }
    }

    public func contains(_ address: UInt32) -> Bool { address >= self.first && address <= self.last }

    public var description: String {
        self.first == self.last ? Self.text(self.first) : "\(Self.text(self.first))-\(Self.text(self.last))"
    }

    static func address(_ text: Substring) -> UInt32? {
        guard case .v4(let bytes)? = IPAddress(String(text)) else { return nil }
        return Self.value(bytes)
    }

    static func value(_ bytes: [UInt8]) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func text(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }
}

/// What a zone's answers mean.
public struct DNSBLZonePolicy: Hashable, Sendable {
    /// Codes that mean the subject is listed.
    public var listed: [IPv4Range]
    /// Codes the list answers when it refuses the query (rate limit, public resolver, typo).
    public var refused: [IPv4Range]
    /// Where the queries go instead of the zone's own name: a data-query service's zone
    /// with the operator's key in it (`query = "{key}.zen.dq.spamhaus.net"` with
    /// `query_key`). Results still carry the zone's name.
    public var queryZone: String?

    public init(listed: [IPv4Range], refused: [IPv4Range], queryZone: String? = nil) {
        self.listed = listed
        self.refused = refused
        self.queryZone = queryZone
    }

    /// RFC 5782 for a zone nobody described: every 127.0.0.0/8 code from 127.0.0.2 up is a
    /// listing, except 127.255.255.0/24, which the large lists use for errors.
    public static let rfc5782 = DNSBLZonePolicy(
        listed: [IPv4Range("127.0.0.2-127.255.254.255")!],
        refused: [IPv4Range("127.255.255.0/24")!])
}

/// The policies of the zones vrules knows, and the operator's own (`[dnsbl."zone"]`).
public struct DNSBLPolicies: Hashable, Sendable {
    public var zones: [String: DNSBLZonePolicy]

    public init(zones: [String: DNSBLZonePolicy] = [:]) {
        self.zones = zones
    }

    /// Built-in policies of widely used lists, from their documentation.
    public static let builtIn = DNSBLPolicies(zones: [
        // Spamhaus: 127.0.0.2-11 listings; 127.255.255.252 typo, .254 public resolver, .255 rate limit.
        "zen.spamhaus.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.2-127.0.0.11")!],
                                            refused: [IPv4Range("127.255.255.0/24")!]),
        "sbl.spamhaus.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.2-127.0.0.3")!],
                                            refused: [IPv4Range("127.255.255.0/24")!]),
        "xbl.spamhaus.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.4-127.0.0.7")!],
                                            refused: [IPv4Range("127.255.255.0/24")!]),
        "pbl.spamhaus.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.10-127.0.0.11")!],
                                            refused: [IPv4Range("127.255.255.0/24")!]),
        "dbl.spamhaus.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.1.2-127.0.1.255")!],
                                            refused: [IPv4Range("127.255.255.0/24")!]),
        // URIBL: 127.0.0.1 means the query was refused; listings are bit masks 2 to 14.
        "multi.uribl.com": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.2-127.0.0.14")!],
                                           refused: [IPv4Range("127.0.0.1")!]),
        "bl.spamcop.net": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.2")!], refused: []),
        "b.barracudacentral.org": DNSBLZonePolicy(listed: [IPv4Range("127.0.0.2")!], refused: []),
    ])

    /// The policy of `zone`: the operator's, else the built-in one, else RFC 5782's.
    public func policy(for zone: String) -> DNSBLZonePolicy {
        self.zones[zone] ?? Self.builtIn.zones[zone] ?? .rfc5782
    }

    /// These policies over the built-in ones.
    public func merged() -> DNSBLPolicies {
        DNSBLPolicies(zones: Self.builtIn.zones.merging(self.zones) { _, own in own })
    }
}

/// The answer of one zone.
public struct DNSBLResult: Hashable, Sendable {
    public enum Status: String, Sendable {
        case listed, clean, refused, error, temperror
    }

    public var zone: String
    public var status: Status
    /// The A records the zone answered, in its order.
    public var codes: [String]
    /// The zone's TXT record for a listing, if it has one.
    public var text: String?
    /// Why the status is `error` or `temperror`.
    public var reason: String?
    /// True only when the zone's answer for the subject validated as DNSSEC-secure.
    public var secure: Bool

    public init(zone: String, status: Status, codes: [String] = [], text: String? = nil, reason: String? = nil,
                secure: Bool = false) {
        self.zone = zone
        self.status = status
        self.codes = codes
        self.text = text
        self.reason = reason
        self.secure = secure
    }
}

/// A blocklist zone as a rule, the command line or `[dnsbl."<zone>"]` names it: a domain
/// name, normalised, and not the root (`""`, `"."`), under which a subject's name would be
/// asked as a top-level domain.
public enum DNSBLZone {
    public static func name(_ text: String) throws(DNSNameError) -> String {
        let name = try DNSName.normalize(text)
        guard !name.isEmpty else { throw DNSNameError(name: text, reason: "a blocklist zone cannot be the root") }
        return name
    }
}

/// What is looked up: an IP (reversed octets, IPv6 nibbles; an IPv4-mapped address as its
/// IPv4 address) or a domain (RHSBL, DBL).
public enum DNSBLSubject: Hashable, Sendable {
    case ip(IPAddress)
    case domain(String)

    /// Parses an IP, else a domain name (normalised); nil for text that is neither.
    public init?(_ text: String) {
        if let ip = IPAddress(text) {
            if case .v6(let b) = ip, b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff {
                self = .ip(.v4(Array(b[12..<16])))
            } else {
                self = .ip(ip)
            }
        } else if let name = try? DNSName.normalize(text), !name.isEmpty {
            self = .domain(name)
        } else {
            return nil
        }
    }

    /// The subject as written in messages.
    public var name: String {
        switch self {
        case .ip(let ip): return ip.description
        case .domain(let name): return name
        }
    }

    /// The name asked under `zone`.
    public func queryName(in zone: String) -> String {
        switch self {
        case .ip(let ip):
            let reverse = ip.reverseName
            let suffix = ip.isIPv4 ? ".in-addr.arpa" : ".ip6.arpa"
            return String(reverse.dropLast(suffix.count)) + "." + zone
        case .domain(let name):
            return name + "." + zone
        }
    }
}

/// Whether each zone still behaves as a blocklist, from its RFC 5782 §5 test points:
/// 127.0.0.2 must be listed and 127.0.0.1 must not. A zone that fails (it lists everything,
/// or nothing, as a dead or wildcarding list does) answers `error` until it passes again.
/// Checked alongside the first query of a zone and again once `interval` has passed, in
/// the same round trip as the query itself.
public final class DNSBLHealth: @unchecked Sendable {
    // @unchecked: `entries` is only touched with `lock` held.

    /// A zone's last check: when, and why it failed (nil when it passed).
    public struct Status: Hashable, Sendable {
        public var checkedAt: ContinuousClock.Instant
        public var failure: String?
    }

    public let interval: Duration
    /// The most zones whose health is kept. Zones are meant to be a few constants; a script
    /// that names one from what a client sends (`dns.dnsbl(ip, ctx.helo)`, a mistake) must
    /// not grow this table, or the `vrules_dnsbl_zone_failing` series, without end. A zone
    /// past the bound is asked as any other, without its test points.
    public static let maximumZones = 1_000
    private let lock = DNSLock()
    private var entries: [String: Status] = [:]
    private var observers: [@Sendable (String, String?) -> Void] = []

    public init(interval: Duration = .seconds(600)) {
        self.interval = interval
    }

    /// Adds an observer called with the zone and its failure (nil: healthy again) whenever a
    /// zone's health changes, and when a zone fails its first check (logs, metrics).
    public func observe(_ observer: @escaping @Sendable (String, String?) -> Void) {
        self.lock.withLock { self.observers.append(observer) }
    }

    public func status(of zone: String) -> Status? {
        self.lock.withLock { self.entries[zone] }
    }

    func needsCheck(_ zone: String, now: ContinuousClock.Instant) -> Bool {
        self.lock.withLock {
            guard let status = self.entries[zone] else { return self.entries.count < Self.maximumZones }
            return now - status.checkedAt >= self.interval
        }
    }

    /// Records a check; returns whether the zone's health changed (for a log line).
    @discardableResult
    public func record(_ zone: String, failure: String?, now: ContinuousClock.Instant = .now) -> Bool {
        let (changed, observers) = self.lock.withLock { () -> (Bool, [@Sendable (String, String?) -> Void]) in
            let previous = self.entries[zone]
            guard previous != nil || self.entries.count < Self.maximumZones else { return (false, []) }
            self.entries[zone] = Status(checkedAt: now, failure: failure)
            return (previous == nil ? failure != nil : previous?.failure != failure, self.observers)
        }
        if changed { for observer in observers { observer(zone, failure) } }
        return changed
    }

    /// Every zone checked, with its last status.
    public var zones: [String: Status] { self.lock.withLock { self.entries } }
}

/// Asks every zone at once (the stage waits for the slowest, not the sum), then the TXT
/// records of the zones that list the subject.
public struct DNSBLCheck: DNSLookupPlan, Sendable {
    public typealias Output = [DNSBLResult]

    public let subject: DNSBLSubject
    public let zones: [String]
    public let policies: DNSBLPolicies
    public let health: DNSBLHealth?
    private var results: [DNSBLResult] = []
    /// Indexes of the zones asked about the subject, and of those whose test points are asked.
    private var asked: [Int] = []
    private var checked: [Int] = []
    private var awaitingText: [Int] = []
    private var answeredA = false

    /// With `forceCheck`, every zone's test points are asked whatever the last check.
    public init(subject: DNSBLSubject, zones: [String], policies: DNSBLPolicies, health: DNSBLHealth? = nil,
                forceCheck: Bool = false) {
        self.subject = subject
        self.zones = zones
        self.policies = policies
        self.health = health
        self.forceCheck = forceCheck
    }

    private let forceCheck: Bool

    /// The zone the questions for zone `index` go to (a data-query service's, or its own).
    private func queried(_ index: Int) -> String {
        self.policies.policy(for: self.zones[index]).queryZone ?? self.zones[index]
    }

    /// RFC 5782 §5: 127.0.0.2 (or the domain `test`) is listed, 127.0.0.1 (`invalid`) is not.
    var testPoints: (listed: DNSBLSubject, clean: DNSBLSubject) {
        switch self.subject {
        case .ip: return (.ip(.v4([127, 0, 0, 2])), .ip(.v4([127, 0, 0, 1])))
        case .domain: return (.domain("test"), .domain("invalid"))
        }
    }

    public mutating func start() -> DNSLookupStep<Output> {
        guard !self.zones.isEmpty else { return .done([]) }
        let now = ContinuousClock.now
        self.results = self.zones.map { DNSBLResult(zone: $0, status: .clean) }
        var questions: [DNSQuestion] = []
        for (index, zone) in self.zones.enumerated() {
            if let health = self.health, !self.forceCheck, !health.needsCheck(zone, now: now),
               let failure = health.status(of: zone)?.failure {
                self.results[index] = DNSBLResult(zone: zone, status: .error, reason: "the zone failed its health check: \(failure)")
                continue
            }
            self.asked.append(index)
            questions.append(DNSQuestion(name: self.subject.queryName(in: self.queried(index)), type: .a))
        }
        if let health = self.health {
            for index in self.asked where self.forceCheck || health.needsCheck(self.zones[index], now: now) {
                self.checked.append(index)
                questions.append(DNSQuestion(name: self.testPoints.listed.queryName(in: self.queried(index)), type: .a))
                questions.append(DNSQuestion(name: self.testPoints.clean.queryName(in: self.queried(index)), type: .a))
            }
        }
        guard !questions.isEmpty else { return .done(self.results) }
        return .need(questions)
    }

    public mutating func resume(with answers: [DNSQueryResult]) -> DNSLookupStep<Output> {
        if !self.answeredA {
            self.answeredA = true
            for (index, answer) in zip(self.asked, answers) {
                let zone = self.zones[index]
                self.results[index] = Self.classify(answer, zone: zone, policy: self.policies.policy(for: zone))
                if case .success(let found) = answer { self.results[index].secure = found.secure }
            }
            self.judgeHealth(Array(answers.dropFirst(self.asked.count)))
            self.awaitingText = self.asked.filter { self.results[$0].status == .listed }
            guard !self.awaitingText.isEmpty else { return .done(self.results) }
            return .need(self.awaitingText.map { DNSQuestion(name: self.subject.queryName(in: self.queried($0)), type: .txt) })
        }
        for (index, answer) in zip(self.awaitingText, answers) {
            guard case .success(let found) = answer else { continue }
            let texts = found.records.compactMap { record -> String? in
                guard case .txt(let strings) = record.data else { return nil }
                return String(decoding: strings.joined(), as: UTF8.self)
            }
            if !texts.isEmpty { self.results[index].text = texts.joined(separator: " ") }
        }
        self.awaitingText = []
        return .done(self.results)
    }

    /// Test points answered two per checked zone: 127.0.0.2 must be listed, 127.0.0.1 not.
    /// A transient failure decides nothing (the last verdict stands).
    private mutating func judgeHealth(_ answers: [DNSQueryResult]) {
        guard let health = self.health else { return }
        for (position, index) in self.checked.enumerated() where 2 * position + 1 < answers.count {
            let zone = self.zones[index]
            let policy = self.policies.policy(for: zone)
            let listedPoint = Self.classify(answers[2 * position], zone: zone, policy: policy)
            let cleanPoint = Self.classify(answers[2 * position + 1], zone: zone, policy: policy)
            guard listedPoint.status != .temperror, cleanPoint.status != .temperror else { continue }
            var failure: String?
            if cleanPoint.status != .clean {
                failure = "test point \(self.testPoints.clean.name) answers \(cleanPoint.codes.joined(separator: ", ")): the zone lists everything"
            } else if listedPoint.status != .listed {
                failure = "test point \(self.testPoints.listed.name) is not listed (\(listedPoint.status.rawValue)): the zone lists nothing or is gone"
            }
            health.record(zone, failure: failure)
            if let failure {
                self.results[index] = DNSBLResult(zone: zone, status: .error, codes: self.results[index].codes,
                                                  reason: "the zone failed its health check: \(failure)")
            }
        }
    }

    static func classify(_ answer: DNSQueryResult, zone: String, policy: DNSBLZonePolicy) -> DNSBLResult {
        let found: DNSAnswer
        switch answer {
        case .success(let value): found = value
        case .failure(let error):
            return DNSBLResult(zone: zone, status: .temperror, reason: "DNS \(error.kind.rawValue)")
        }
        let addresses = found.records.compactMap { record -> [UInt8]? in
            if case .a(.v4(let bytes)) = record.data { return bytes }
            return nil
        }
        guard found.outcome == .ok, !addresses.isEmpty else { return DNSBLResult(zone: zone, status: .clean) }
        let codes = addresses.map { IPv4Range.text(IPv4Range.value($0)) }
        let values = addresses.map(IPv4Range.value)
        if let outside = values.first(where: { $0 >> 24 != 127 }) {
            return DNSBLResult(zone: zone, status: .error, codes: codes,
                               reason: "answer \(IPv4Range.text(outside)) is outside 127.0.0.0/8: the zone wildcards every name or is hijacked")
        }
        if values.contains(where: { value in policy.refused.contains { $0.contains(value) } }) {
            return DNSBLResult(zone: zone, status: .refused, codes: codes, reason: "the list refused the query")
        }
        let listed = values.filter { value in policy.listed.contains { $0.contains(value) } }
        guard !listed.isEmpty else {
            return DNSBLResult(zone: zone, status: .error, codes: codes,
                               reason: "code \(codes.joined(separator: ", ")) is not one of the zone's listing codes")
        }
        return DNSBLResult(zone: zone, status: .listed, codes: listed.map(IPv4Range.text))
    }
}
