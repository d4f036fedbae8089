// The high-level lookups behind `dns.lookup`, `dns.rlookup`, `dns.locate_mx`, `dns.iprev`
// and `dns.query`, written once as `DNSLookupPlan` state machines so that the zone resolver
// and the network resolver share one implementation of their semantics (docs/lua-api.md, docs/dns-resolver.md).
//
// Every plan takes names that are already normalised (`DNSName.normalize`): the engine
// validates a script's input once, and turns an invalid name into a script error before
// any plan exists. Driving a plan against its protocol (resuming with a number of results
// other than the number of questions asked, or after it finished) is a programming error
// and traps.

extension DNSAnswer {
    /// The addresses held by `records`, in answer order, of the family that was asked.
    var addresses: [IPAddress] {
        guard self.outcome == .ok else { return [] }
        var addresses: [IPAddress] = []
        addresses.reserveCapacity(self.records.count)
        for record in self.records {
            switch record.data {
            case .a(let address) where self.type == .a:
                addresses.append(address)
            case .aaaa(let address) where self.type == .aaaa:
                addresses.append(address)
            default:
                continue
            }
        }
        return addresses
    }

    /// The name that owns the records: the end of the CNAME chain, or the name asked.
    var canonicalName: String {
        if let last = self.chain.last, case .cname(let target) = last.data { return target }
        return self.name
    }
}

// MARK: - dns.lookup

public struct AddressLookupResult: Hashable, Sendable {
    /// Ordered by the strategy: the first family's addresses, then the second's.
    public var addresses: [IPAddress]
    /// `.ok` when there is any address, `.nxdomain` when every family answered that the
    /// name does not exist, `.nodata` otherwise.
    public var outcome: DNSOutcome
    /// True only when every family asked answered, and every answer validated as
    /// DNSSEC-secure (addresses, or the proof that there are none).
    public var secure: Bool

    public init(addresses: [IPAddress], outcome: DNSOutcome, secure: Bool = false) {
        self.addresses = addresses
        self.outcome = outcome
        self.secure = secure
    }
}

/// The addresses of a name, asked family by family as `IPStrategy` says (docs/dns-resolver.md).
///
/// `ipv4Only`/`ipv6Only` ask one question; `ipv4AndIpv6` asks both at once and merges them,
/// IPv4 first; `ipv4ThenIpv6`/`ipv6ThenIpv4` ask the second family only when the first gave
/// no address, for whatever reason (NODATA, NXDOMAIN, or a failure). A transient error is
/// returned only when no address was found at all: an answer from one family is worth more
/// to a rule than the other family's timeout.
///
/// One exception keeps the lookup within the resolver's documented worst case: when the
/// first family failed because the whole `(1 + attempts) × timeout` ran out
/// (`DNSError.usedWholeTimeBound`), the servers are silent and the second family is not
/// asked; asking it would only wait as long again.
public struct AddressLookup: DNSLookupPlan, Sendable {
    public typealias Output = Result<AddressLookupResult, DNSError>

    /// The name to look up, already normalised.
    public let name: String
    public let strategy: IPStrategy
    /// The families in the order their addresses are returned.
    private let families: [DNSRecordType]
    private var results: [DNSQueryResult] = []
    private var pending = 0

    public init(name: String, strategy: IPStrategy) {
        self.name = name
        self.strategy = strategy
        switch strategy {
        case .ipv4Only: self.families = [.a]
        case .ipv6Only: self.families = [.aaaa]
        case .ipv4AndIpv6, .ipv4ThenIpv6: self.families = [.a, .aaaa]
        case .ipv6ThenIpv4: self.families = [.aaaa, .a]
        }
    }

    public mutating func start() -> DNSLookupStep<Output> {
        self.results = []
        let questions = self.families.map { DNSQuestion(name: self.name, type: $0) }
        return self.ask(self.strategy == .ipv4AndIpv6 ? questions : [questions[0]])
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        precondition(results.count == self.pending && self.pending > 0,
                     "AddressLookup resumed with \(results.count) results for \(self.pending) questions")
        self.pending = 0
        self.results.append(contentsOf: results)
        if self.results.count < self.families.count && !self.results.contains(where: Self.hasAddresses)
            && !self.results.contains(where: Self.usedWholeTimeBound) {
            return self.ask([DNSQuestion(name: self.name, type: self.families[self.results.count])])
        }
        return .done(Self.merge(self.results))
    }

    private mutating func ask(_ questions: [DNSQuestion]) -> DNSLookupStep<Output> {
        self.pending = questions.count
        return .need(questions)
    }

    private static func usedWholeTimeBound(_ result: DNSQueryResult) -> Bool {
        if case .failure(let error) = result { return error.usedWholeTimeBound }
        return false
    }

    private static func hasAddresses(_ result: DNSQueryResult) -> Bool {
        if case .success(let answer) = result { return !answer.addresses.isEmpty }
        return false
    }

    /// Merges per-family results, given in the order their addresses are returned.
    static func merge(_ results: [DNSQueryResult]) -> Output {
        var addresses: [IPAddress] = []
        var failure: DNSError? = nil
        var everyFamilySaysNXDomain = true
        var everyAnswerSecure = true
        for result in results {
            switch result {
            case .success(let answer):
                addresses.append(contentsOf: answer.addresses)
                if answer.outcome != .nxdomain { everyFamilySaysNXDomain = false }
                if !answer.secure { everyAnswerSecure = false }
            case .failure(let error):
                failure = failure ?? error
                everyFamilySaysNXDomain = false
                everyAnswerSecure = false
            }
        }
        if !addresses.isEmpty {
            return .success(AddressLookupResult(addresses: addresses, outcome: .ok, secure: everyAnswerSecure))
        }
        if let failure {
            return .failure(failure)
        }
        return .success(AddressLookupResult(addresses: [], outcome: everyFamilySaysNXDomain ? .nxdomain : .nodata,
                                            secure: everyAnswerSecure))
    }
}

// MARK: - dns.rlookup

public struct ReverseLookupResult: Hashable, Sendable {
    /// The PTR names, normalised, in answer order.
    public var names: [String]
    public var outcome: DNSOutcome
    /// True only when the PTR answer validated as DNSSEC-secure.
    public var secure: Bool

    public init(names: [String], outcome: DNSOutcome, secure: Bool = false) {
        self.names = names
        self.outcome = outcome
        self.secure = secure
    }
}

/// The PTR names of an address, asked under `in-addr.arpa` or `ip6.arpa`.
public struct ReverseLookup: DNSLookupPlan, Sendable {
    public typealias Output = Result<ReverseLookupResult, DNSError>

    public let ip: IPAddress
    private var pending = false

    public init(ip: IPAddress) {
        self.ip = ip
    }

    public mutating func start() -> DNSLookupStep<Output> {
        self.pending = true
        return .need([DNSQuestion(name: self.ip.reverseName, type: .ptr)])
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        precondition(self.pending && results.count == 1, "ReverseLookup resumed out of turn")
        self.pending = false
        return .done(results[0].map { answer in
            let names = answer.ptrNames
            return ReverseLookupResult(names: names, outcome: names.isEmpty && answer.outcome == .ok ? .nodata : answer.outcome,
                                       secure: answer.secure)
        })
    }
}

extension DNSAnswer {
    /// The PTR targets among `records`, in answer order.
    var ptrNames: [String] {
        guard self.outcome == .ok else { return [] }
        return self.records.compactMap { record in
            if case .ptr(let name) = record.data { return name }
            return nil
        }
    }
}

// MARK: - dns.locate_mx

public struct MXHost: Hashable, Sendable {
    public var host: String
    public var preference: UInt16

    public init(host: String, preference: UInt16) {
        self.host = host
        self.preference = preference
    }
}

public struct MXRoute: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// MX records: `hosts` in preference order, equal preferences shuffled.
        case mx
        /// No MX records, but the domain has addresses: it is its own mail host (RFC 5321 §5.1).
        case implicit
        /// RFC 7505 Null MX: the domain declares that it accepts no mail. `hosts` is empty.
        case null
        /// The domain does not exist, or has neither MX nor address records. `hosts` is empty.
        case none
    }

    public var kind: Kind
    public var hosts: [MXHost]
    /// True only when the MX answer validated as DNSSEC-secure and, for a route decided by
    /// the domain's addresses (`implicit`, or `none` for want of them), both address answers too.
    public var secure: Bool

    public init(kind: Kind, hosts: [MXHost], secure: Bool = false) {
        self.kind = kind
        self.hosts = hosts
        self.secure = secure
    }
}

/// Where mail for a domain goes: RFC 5321 §5.1 with RFC 7505 Null MX.
///
/// - An MX answer that is a single record of preference 0 and exchange `""` (the root) is a
///   Null MX. A null exchange among other MX records is ignored (RFC 7505 §3: such a set is
///   a misconfiguration, and the real hosts are still the best route); if nothing usable is
///   left, the route is `.none`.
/// - Hosts are sorted by preference; hosts of equal preference are shuffled, which is how
///   RFC 5321 §5.1 spreads load.
/// - NXDOMAIN is `.none`. NODATA asks A and AAAA (both at once) of the canonical name (after
///   the CNAME chain, as RFC 5321 §5.1 asks): any address makes it the single implicit host,
///   with preference 0. Then as for `dns.lookup`, a failure of one family does not hide the
///   other family's addresses.
/// - Any other transient failure is the result, so that a rule never rejects mail for a
///   domain it could not look up.
public struct MXLocation: DNSLookupPlan, Sendable {
    public typealias Output = Result<MXRoute, DNSError>

    /// The domain, already normalised.
    public let domain: String
    private var random: any RandomNumberGenerator & Sendable
    private var state: State = .idle

    private enum State {
        case idle
        case askedMX
        case askedAddresses(host: String, mxSecure: Bool)
        case finished
    }

    /// Shuffles equal preferences with a fast generator seeded from the system's once per
    /// process: MX order needs to vary, not to be unpredictable, and a system-random call
    /// per lookup would cost a syscall on a hot path.
    public init(domain: String) {
        self.init(domain: domain, random: SplitMix64(seed: MXShuffleSeeds.next()))
    }

    /// Shuffles equal preferences with `random` (a seeded generator makes tests repeatable).
    public init(domain: String, random: some RandomNumberGenerator & Sendable) {
        self.domain = domain
        self.random = random
    }

    /// Shuffles equal preferences with a small generator seeded with `seed`.
    public init(domain: String, seed: UInt64) {
        self.init(domain: domain, random: SplitMix64(seed: seed))
    }

    public mutating func start() -> DNSLookupStep<Output> {
        self.state = .askedMX
        return .need([DNSQuestion(name: self.domain, type: .mx)])
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        switch self.state {
        case .askedMX:
            precondition(results.count == 1, "MXLocation resumed with \(results.count) results for 1 question")
            return self.handleMX(results[0])
        case .askedAddresses(let host, let mxSecure):
            precondition(results.count == 2, "MXLocation resumed with \(results.count) results for 2 questions")
            return self.finish(Self.implicitRoute(host: host, addressResults: results, mxSecure: mxSecure))
        case .idle, .finished:
            preconditionFailure("MXLocation resumed while not waiting for answers")
        }
    }

    private mutating func handleMX(_ result: DNSQueryResult) -> DNSLookupStep<Output> {
        let answer: DNSAnswer
        switch result {
        case .failure(let error):
            return self.finish(.failure(error))
        case .success(let success):
            answer = success
        }
        if answer.outcome == .nxdomain {
            return self.finish(.success(MXRoute(kind: .none, hosts: [], secure: answer.secure)))
        }
        var exchanges: [MXHost] = []
        for record in answer.records {
            if case .mx(let preference, let exchange) = record.data {
                exchanges.append(MXHost(host: exchange, preference: preference))
            }
        }
        if exchanges.isEmpty {
            let host = answer.canonicalName
            self.state = .askedAddresses(host: host, mxSecure: answer.secure)
            return .need([DNSQuestion(name: host, type: .a), DNSQuestion(name: host, type: .aaaa)])
        }
        var route = self.route(from: exchanges)
        route.secure = answer.secure
        return self.finish(.success(route))
    }

    private mutating func route(from exchanges: [MXHost]) -> MXRoute {
        if exchanges.count == 1 && exchanges[0].preference == 0 && exchanges[0].host.isEmpty {
            return MXRoute(kind: .null, hosts: [])
        }
        var hosts = exchanges.filter { !$0.host.isEmpty }
        guard !hosts.isEmpty else { return MXRoute(kind: .none, hosts: []) }
        guard hosts.count > 1 else { return MXRoute(kind: .mx, hosts: hosts) }
        // By preference, equal ones in the order the answer gave them (answers usually come
        // sorted already), then each run of equal preferences shuffled in place.
        if zip(hosts, hosts.dropFirst()).contains(where: { $0.preference > $1.preference }) {
            hosts = hosts.enumerated().sorted {
                ($0.element.preference, $0.offset) < ($1.element.preference, $1.offset)
            }.map(\.element)
        }
        var start = 0
        while start < hosts.count {
            var end = start + 1
            while end < hosts.count && hosts[end].preference == hosts[start].preference { end += 1 }
            // Fisher-Yates over start..<end.
            var last = end - 1
            while last > start {
                let other = start + Int(self.random.next(upperBound: UInt(last - start + 1)))
                hosts.swapAt(last, other)
                last -= 1
            }
            start = end
        }
        return MXRoute(kind: .mx, hosts: hosts)
    }

    private static func implicitRoute(host: String, addressResults: [DNSQueryResult], mxSecure: Bool) -> Output {
        switch AddressLookup.merge(addressResults) {
        case .failure(let error):
            return .failure(error)
        case .success(let found) where found.outcome == .ok:
            return .success(MXRoute(kind: .implicit, hosts: [MXHost(host: host, preference: 0)], secure: mxSecure && found.secure))
        case .success(let found):
            return .success(MXRoute(kind: .none, hosts: [], secure: mxSecure && found.secure))
        }
    }

    private mutating func finish(_ output: Output) -> DNSLookupStep<Output> {
        self.state = .finished
        return .done(output)
    }
}

/// Distinct seeds for MX shuffles: a process-random base plus a counter.
enum MXShuffleSeeds {
    private static let base = UInt64.random(in: .min ... .max)
    private static let lock = DNSLock()
    // nonisolated(unsafe): read and written only with `lock` held.
    nonisolated(unsafe) private static var counter: UInt64 = 0

    static func next() -> UInt64 {
        let count = self.lock.withLock { () -> UInt64 in
            self.counter &+= 1
            return self.counter
        }
        return self.base &+ count &* 0x9e37_79b9_7f4a_7c15
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough to shuffle MX hosts
/// repeatably in tests. Not for anything that needs unpredictability.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

// MARK: - dns.iprev

public struct IprevResult: Hashable, Sendable {
    /// RFC 8601 §2.7.3 results.
    public enum Status: String, Hashable, Sendable {
        case pass
        case fail
        case temperror
        case permerror
    }

    public var status: Status
    /// The PTR name whose addresses include the IP; nil unless `status` is `.pass`.
    public var name: String?
    /// True only when the PTR answer validated as DNSSEC-secure and so did every address
    /// answer the status rests on: the confirming name's for `pass`, all of them for `fail`.
    /// Never for `temperror`.
    public var secure: Bool

    public init(status: Status, name: String? = nil, secure: Bool = false) {
        self.status = status
        self.name = name
        self.secure = secure
    }
}

/// RFC 8601 §3 iprev ("forward-confirmed reverse DNS").
///
/// PTR of the IP: NXDOMAIN or NODATA is `permerror` (nothing published), a transient failure
/// `temperror`. Then the addresses of each PTR name (the first `maximumNames`, asked all at
/// once) in the IP's own family, whatever the resolver's `ip_strategy`, since only that
/// family can contain the IP: `pass` with the first name (in PTR order) whose addresses
/// include the IP; otherwise `temperror` if any of those lookups failed transiently (the
/// missing answer might have confirmed it); otherwise `fail`, which includes forward names
/// that do not exist. The result is never an error: the check itself reports temperror.
public struct IprevCheck: DNSLookupPlan, Sendable {
    public typealias Output = IprevResult

    /// PTR names examined; more would let one PTR RRset cost unbounded queries.
    public static let maximumNames = 10

    public let ip: IPAddress
    private var state: State = .idle

    private enum State {
        case idle
        case askedPTR
        case askedForward(names: [String], ptrSecure: Bool)
        case finished
    }

    public init(ip: IPAddress) {
        self.ip = ip
    }

    public mutating func start() -> DNSLookupStep<Output> {
        self.state = .askedPTR
        return .need([DNSQuestion(name: self.ip.reverseName, type: .ptr)])
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        switch self.state {
        case .askedPTR:
            precondition(results.count == 1, "IprevCheck resumed with \(results.count) results for 1 question")
            return self.handlePTR(results[0])
        case .askedForward(let names, let ptrSecure):
            precondition(results.count == names.count,
                         "IprevCheck resumed with \(results.count) results for \(names.count) questions")
            return self.finish(self.confirm(names: names, results: results, ptrSecure: ptrSecure))
        case .idle, .finished:
            preconditionFailure("IprevCheck resumed while not waiting for answers")
        }
    }

    private mutating func handlePTR(_ result: DNSQueryResult) -> DNSLookupStep<Output> {
        let answer: DNSAnswer
        switch result {
        case .failure:
            return self.finish(IprevResult(status: .temperror))
        case .success(let success):
            answer = success
        }
        var names: [String] = []
        for name in answer.ptrNames where !name.isEmpty && !names.contains(name) {
            names.append(name)
            if names.count == Self.maximumNames { break }
        }
        guard !names.isEmpty else { return self.finish(IprevResult(status: .permerror, secure: answer.secure)) }
        self.state = .askedForward(names: names, ptrSecure: answer.secure)
        let type = self.ip.addressRecordType
        return .need(names.map { DNSQuestion(name: $0, type: type) })
    }

    private func confirm(names: [String], results: [DNSQueryResult], ptrSecure: Bool) -> IprevResult {
        var failed = false
        var everyAnswerSecure = ptrSecure
        for (name, result) in zip(names, results) {
            switch result {
            case .success(let answer):
                if answer.addresses.contains(self.ip) { return IprevResult(status: .pass, name: name, secure: ptrSecure && answer.secure) }
                if !answer.secure { everyAnswerSecure = false }
            case .failure:
                failed = true
            }
        }
        if failed { return IprevResult(status: .temperror) }
        return IprevResult(status: .fail, secure: everyAnswerSecure)
    }

    private mutating func finish(_ output: Output) -> DNSLookupStep<Output> {
        self.state = .finished
        return .done(output)
    }
}

// MARK: - dns.query

/// One question, answered as is: the plan form of `resolve`, so that `dns.query` goes
/// through the same immediate-or-suspend path as the other lookups.
public struct RecordQuery: DNSLookupPlan, Sendable {
    public typealias Output = DNSQueryResult

    /// The name, already normalised.
    public let name: String
    public let type: DNSRecordType
    private var pending = false

    public init(name: String, type: DNSRecordType) {
        self.name = name
        self.type = type
    }

    public mutating func start() -> DNSLookupStep<Output> {
        self.pending = true
        return .need([DNSQuestion(name: self.name, type: self.type)])
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        precondition(self.pending && results.count == 1, "RecordQuery resumed out of turn")
        self.pending = false
        return .done(results[0])
    }
}
