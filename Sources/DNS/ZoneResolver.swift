/// A failure injected into the zone resolver, so that rule tests can see how a policy
/// behaves when DNS is down without a network.
public enum ZoneFault: Hashable, Sendable {
    /// The lookup fails with `DNSError.Kind.timeout`, at once (no real wait).
    case timeout
    /// The lookup fails with `DNSError.Kind.servfail`.
    case servfail
    /// The lookup fails with `DNSError.Kind.refused`.
    case refused
    /// The normal answer, after this delay; `immediateResult(for:)` then returns nil,
    /// which exercises the path where a rule's coroutine really suspends.
    case delay(Duration)
}

/// A resolver answering from in-memory records (a zone file): the resolver of
/// `vrules run --zone` and `vrules test`, and of the engine's own tests.
///
/// It behaves as an authoritative server for everything it holds: CNAMEs are followed
/// (at most 8, a loop is a SERVFAIL), a name with no records that has names below it is
/// an empty non-terminal (NODATA, not NXDOMAIN), and a `*` owner is an RFC 4592 wildcard
/// for the names that do not exist below its parent. Every answer is immediate unless
/// a delay is configured, so a plan driven by `advanceImmediately` finishes without awaiting.
public final class ZoneResolver: DNSResolving, @unchecked Sendable {
    // `@unchecked`: the records are immutable after init; every mutable field lives in
    // `state`, which is only touched with `lock` held.

    /// CNAMEs followed before giving up, as the network resolver does: the limit docs/dns-resolver.md gives.
    public static let maximumCNAMEChain = 8
    /// How many questions `askedQuestions` keeps, so a long `vrules run` does not grow without bound.
    public static let questionLogLimit = 1024

    /// What of a configured resolver's options zone files answer with, so that rules see from a
    /// zone what they will see in production (`[server.dns.options]`; `rotate` is left out: a
    /// zone's answers stay the same from run to run).
    public struct Options: Sendable, Equatable {
        /// `ip_strategy`: which address families `dns.lookup` gets, in which order.
        public var ipStrategy: IPStrategy
        /// `preserve_intermediates`: whether an answer keeps the CNAME chain that led to it.
        public var preservesIntermediates: Bool

        public init(ipStrategy: IPStrategy = .ipv4ThenIpv6, preservesIntermediates: Bool = true) {
            self.ipStrategy = ipStrategy
            self.preservesIntermediates = preservesIntermediates
        }
    }

    public let ipStrategy: IPStrategy
    public let rotatesRecords: Bool
    public let preservesIntermediates: Bool

    /// Records by owner, in zone order, without duplicates (an RRset is a set).
    private let recordsByName: [String: [DNSRecord]]
    /// Every owner and every ancestor of one: the names that exist (RFC 8020).
    private let existingNames: Set<String>
    /// The DNSSEC status of answers, by name (`$DNSSEC`); empty: every answer is insecure.
    public let security: ZoneSecurityMarks

    private let lock = DNSLock()
    private var state = State()

    private struct State {
        var delay: Duration = .zero
        var faultsByName: [String: ZoneFault] = [:]
        var faultsByQuestion: [DNSQuestion: ZoneFault] = [:]
        var rotation: [DNSQuestion: Int] = [:]
        var questionCount = 0
        var questionLog: [DNSQuestion] = []
        var delayedNow = 0
        var delayedAtOnce = 0
    }

    /// A zone file's records and `$DNSSEC` marks (`ZoneFile.loadContents`).
    public convenience init(contents: ZoneContents, ipStrategy: IPStrategy = .ipv4ThenIpv6, rotate: Bool = false) {
        self.init(records: contents.records, security: contents.security, ipStrategy: ipStrategy, rotate: rotate)
    }

    /// A zone's records answered with a configured resolver's `options`.
    public convenience init(records: [DNSRecord], security: ZoneSecurityMarks = ZoneSecurityMarks(), options: Options) {
        self.init(records: records, security: security, ipStrategy: options.ipStrategy,
                  preservesIntermediates: options.preservesIntermediates)
    }

    /// `records` need normalised owner names, as `ZoneFile.parse` produces them. An answer
    /// carries the status `security` gives every name it rests on (the name asked and each
    /// CNAME target): a bogus or indeterminate one is for the rule engine a DNS error.
    public init(records: [DNSRecord], security: ZoneSecurityMarks = ZoneSecurityMarks(),
                ipStrategy: IPStrategy = .ipv4ThenIpv6, rotate: Bool = false, preservesIntermediates: Bool = true) {
        var byName: [String: [DNSRecord]] = [:]
        var seen: Set<DNSRecord> = []
        var existing: Set<String> = []
        for record in records {
            guard seen.insert(DNSRecord(name: record.name, ttl: 0, data: record.data)).inserted else { continue }
            byName[record.name, default: []].append(record.believed)
            var name = Substring(record.name)
            while existing.insert(String(name)).inserted, !name.isEmpty {
                name = Self.parent(of: name)
            }
        }
        self.recordsByName = byName
        self.existingNames = existing
        self.security = security
        self.ipStrategy = ipStrategy
        self.rotatesRecords = rotate
        self.preservesIntermediates = preservesIntermediates
    }

    // MARK: Configuration

    /// A delay added to every answer (on top of a `.delay` fault). Zero by default.
    public var delay: Duration {
        get { self.lock.withLock { self.state.delay } }
        set { self.lock.withLock { self.state.delay = newValue } }
    }

    /// Injects `fault` for every question about exactly `name` (any type; not its subdomains,
    /// and not names that reach it through a CNAME). Nil removes it.
    public func setFault(_ fault: ZoneFault?, for name: String) {
        let key = Self.normalizedKey(name)
        self.lock.withLock { self.state.faultsByName[key] = fault }
    }

    /// Injects `fault` for one type of `name` only (`AAAA` times out while `A` answers).
    /// It takes precedence over a fault set for the whole name. Nil removes it.
    public func setFault(_ fault: ZoneFault?, for name: String, type: DNSRecordType) {
        let key = DNSQuestion(name: Self.normalizedKey(name), type: type)
        self.lock.withLock { self.state.faultsByQuestion[key] = fault }
    }

    /// How many questions were answered (by `resolve`, or by `immediateResult` when it answered).
    public var questionCount: Int {
        self.lock.withLock { self.state.questionCount }
    }

    /// The questions answered, oldest first (the last `questionLogLimit`).
    public var askedQuestions: [DNSQuestion] {
        self.lock.withLock { Array(self.state.questionLog.suffix(Self.questionLogLimit)) }
    }

    /// Forgets the counted and logged questions, between the steps of a test.
    /// The most questions that waited out a `delay` at the same time: how a test sees that
    /// lookups ran at once rather than one after another, without timing them.
    public var mostDelayedAtOnce: Int {
        self.lock.withLock { self.state.delayedAtOnce }
    }

    public func resetQuestionLog() {
        self.lock.withLock {
            self.state.questionCount = 0
            self.state.questionLog.removeAll()
        }
    }

    /// Fault keys are normalised like questions; a name that cannot be normalised can never
    /// be asked, so keeping it lower-cased is harmless.
    private static func normalizedKey(_ name: String) -> String {
        (try? DNSName.normalize(name)) ?? name.lowercased()
    }

    // MARK: DNSResolving

    public func resolve(_ question: DNSQuestion) async -> DNSQueryResult {
        let (delay, fault) = self.configuration(for: question)
        if delay > .zero {
            self.lock.withLock {
                self.state.delayedNow += 1
                self.state.delayedAtOnce = max(self.state.delayedAtOnce, self.state.delayedNow)
            }
            try? await Task.sleep(for: delay)
            self.lock.withLock { self.state.delayedNow -= 1 }
        }
        return self.answer(question, fault: fault)
    }

    public func immediateResult(for question: DNSQuestion) -> DNSQueryResult? {
        // One lock for the configuration and the question log: this is every rule's hot path
        // in `vrules run`, `vrules test` and the engine benchmark.
        let fault = self.lock.withLock { () -> ZoneFault?? in
            let fault = self.state.faultsByQuestion[question] ?? self.state.faultsByName[question.name]
            var delay = self.state.delay
            if case .delay(let extra) = fault { delay += extra }
            guard delay <= .zero else { return .none }
            self.logQuestionLocked(question)
            return .some(fault)
        }
        guard let fault else { return nil }
        return self.answerLogged(question, fault: fault)
    }

    private func configuration(for question: DNSQuestion) -> (delay: Duration, fault: ZoneFault?) {
        self.lock.withLock {
            let fault = self.state.faultsByQuestion[question] ?? self.state.faultsByName[question.name]
            var delay = self.state.delay
            if case .delay(let extra) = fault { delay += extra }
            return (delay, fault)
        }
    }

    private func answer(_ question: DNSQuestion, fault: ZoneFault?) -> DNSQueryResult {
        self.lock.withLock { self.logQuestionLocked(question) }
        return self.answerLogged(question, fault: fault)
    }

    /// Counts and logs a question; `lock` must be held.
    private func logQuestionLocked(_ question: DNSQuestion) {
        self.state.questionCount += 1
        // Trimmed in halves so that logging stays O(1) amortised on a hot path.
        if self.state.questionLog.count >= 2 * Self.questionLogLimit {
            self.state.questionLog.removeFirst(Self.questionLogLimit)
        }
        self.state.questionLog.append(question)
    }

    private func answerLogged(_ question: DNSQuestion, fault: ZoneFault?) -> DNSQueryResult {
        switch fault {
        case .timeout:
            return .failure(DNSError(kind: .timeout, name: question.name, type: question.type, detail: "injected fault"))
        case .servfail:
            return .failure(DNSError(kind: .servfail, name: question.name, type: question.type, detail: "injected fault"))
        case .refused:
            return .failure(DNSError(kind: .refused, name: question.name, type: question.type, detail: "injected fault"))
        case .delay, .none:
            return self.lookup(question)
        }
    }

    // MARK: Answers

    private func lookup(_ question: DNSQuestion) -> DNSQueryResult {
        // Most questions are about a name the zone holds, with no CNAME: answered without the
        // chain bookkeeping below.
        if let records = self.recordsByName[question.name],
           question.type == .cname || !records.contains(where: { $0.type == .cname }) {
            let matching = records.filter { $0.type == question.type }
            let security = self.security.isEmpty ? DNSSecurity.insecure : self.security.security(ofChain: [question.name])
            return .success(DNSAnswer(name: question.name, type: question.type, outcome: matching.isEmpty ? .nodata : .ok,
                                      records: self.rotated(matching, owner: question.name, type: question.type),
                                      chain: [], security: security, server: "zone"))
        }
        var owner = question.name
        var chain: [DNSRecord] = []
        // A chain is at most 8 long: a linear scan beats allocating a set on every lookup.
        var visited: [String] = [owner]
        while true {
            let node = self.node(owner)
            // A CNAME answers a CNAME question itself; any other type follows it.
            if question.type != .cname, let alias = node.records.first(where: { $0.type == .cname }),
               case .cname(let target) = alias.data {
                chain.append(alias)
                guard chain.count <= Self.maximumCNAMEChain else {
                    return .failure(DNSError(kind: .servfail, name: question.name, type: question.type,
                                             detail: "CNAME chain longer than \(Self.maximumCNAMEChain)"))
                }
                guard !visited.contains(target) else {
                    let path = (chain.map(\.name) + [target]).joined(separator: " -> ")
                    return .failure(DNSError(kind: .servfail, name: question.name, type: question.type,
                                             detail: "CNAME loop: \(path)"))
                }
                visited.append(target)
                owner = target
                continue
            }
            let records = node.records.filter { $0.type == question.type }
            let outcome: DNSOutcome
            if !records.isEmpty {
                outcome = .ok
            } else {
                outcome = node.exists ? .nodata : .nxdomain
            }
            let security = self.security.isEmpty ? DNSSecurity.insecure : self.security.security(ofChain: visited)
            return .success(DNSAnswer(name: question.name, type: question.type, outcome: outcome,
                                      records: self.rotated(records, owner: owner, type: question.type),
                                      chain: self.preservesIntermediates ? chain : [], security: security, server: "zone"))
        }
    }

    /// The records of `name` and whether it exists, with wildcard synthesis (RFC 4592 §3.3.1):
    /// a name that does not exist takes the records of `*.<closest encloser>`, renamed.
    private func node(_ name: String) -> (records: [DNSRecord], exists: Bool) {
        if self.existingNames.contains(name) {
            return (self.recordsByName[name] ?? [], true)
        }
        guard !name.isEmpty else { return ([], false) }
        var encloser = Substring(name)
        repeat {
            encloser = Self.parent(of: encloser)
        } while !self.existingNames.contains(String(encloser)) && !encloser.isEmpty
        let wildcard = encloser.isEmpty ? "*" : "*.\(encloser)"
        guard let records = self.recordsByName[wildcard] else { return ([], false) }
        return (records.map { DNSRecord(name: name, ttl: $0.ttl, data: $0.data) }, true)
    }

    private func rotated(_ records: [DNSRecord], owner: String, type: DNSRecordType) -> [DNSRecord] {
        guard self.rotatesRecords, records.count > 1 else { return records }
        let key = DNSQuestion(name: owner, type: type)
        let turn = self.lock.withLock { () -> Int in
            let turn = self.state.rotation[key, default: 0]
            self.state.rotation[key] = (turn + 1) % records.count
            return turn
        }
        let offset = turn % records.count
        return Array(records[offset...] + records[..<offset])
    }

    /// `b.c` for `a.b.c`, and the root (`""`) for a single label.
    private static func parent(of name: Substring) -> Substring {
        guard let dot = name.firstIndex(of: ".") else { return name[name.endIndex...] }
        return name[name.index(after: dot)...]
    }
}
