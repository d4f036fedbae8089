import DNS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The network resolver: a stub resolver that asks recursive name servers over UDP/TCP,
/// caches, merges identical questions in flight, and follows CNAME chains.
///
/// Everything the engine sees goes through `DNSResolving`: NXDOMAIN and NODATA are answers,
/// timeouts, SERVFAIL, REFUSED, network errors and DNSSEC bogus answers are `DNSError`s.
public final class DNSNetworkResolver: DNSResolving {
    /// The longest CNAME chain followed: the limit docs/dns-resolver.md gives.
    public static let maximumChainLength = 8

    public let servers: [DNSServerAddress]
    public let options: DNSResolverOptions
    public let cache: DNSCache
    /// SPF results reused while the answers they came from are cached; as many as the cache
    /// holds answers, none when it holds none.
    public let spfResultMemo: SPFResultMemo?
    private let transport: DNSTransport
    /// Printed once: formatting an address (`inet_ntop`) on every answer showed in profiles.
    private let serverNames: [DNSServerAddress: String]
    /// Questions being resolved, with the lookups waiting for the same answer: each is
    /// handed the leader's result, or nil when the leader was cancelled (it then asks again).
    private let inFlight = NIOLockedValueBox([DNSQuestion: [@Sendable (DNSQueryResult?) -> Void]]())
    private let rotationCounter = NIOLockedValueBox(0)
    /// The DNSSEC validator when `validate` is on; it fetches DS and DNSKEY through `exchange`.
    private let validator: DNSSECValidator?

    /// `wallClock` (Unix seconds) decides whether signatures are in their validity period;
    /// injectable so that tests can sign with fixed dates.
    public init(servers: [DNSServerAddress], options: DNSResolverOptions,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                now: @escaping @Sendable () -> NIODeadline = { NIODeadline.now() },
                wallClock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) {
        precondition(!servers.isEmpty, "a resolver needs at least one name server")
        self.servers = servers
        self.options = options
        self.cache = DNSCache(capacity: options.cacheSize, now: now)
        self.spfResultMemo = options.cacheSize > 0
            ? SPFResultMemo(capacity: options.cacheSize, now: { UInt64(now().uptimeNanoseconds) }) : nil
        self.transport = DNSTransport(group: eventLoopGroup)
        self.serverNames = Dictionary(servers.map { ($0, $0.description) }, uniquingKeysWith: { first, _ in first })
        let fetcher = WeakResolver()
        if options.validate {
            let chain = DNSSECChainOfTrust(anchors: options.trustAnchors, fetch: { question in
                guard let resolver = fetcher.resolver else {
                    return .failure(DNSError(kind: .network, name: question.name, type: question.type, detail: "resolver gone"))
                }
                return await resolver.fetchForValidation(question)
            }, clock: now, wallClock: wallClock)
            self.validator = DNSSECValidator(chain: chain, limits: options.dnssecLimits, wallClock: wallClock)
        } else {
            self.validator = nil
        }
        fetcher.resolver = self
    }

    /// Lets the chain of trust reach the resolver without keeping it alive.
    private final class WeakResolver: @unchecked Sendable {
        // Written once in the resolver's init, before any lookup can read it.
        weak var resolver: DNSNetworkResolver?
    }

    /// A DS or DNSKEY query for the chain of trust: the same servers and transport as any
    /// lookup, with its own time bound; the raw message, since the signatures are needed.
    func fetchForValidation(_ question: DNSQuestion) async -> Result<DNSMessage, DNSError> {
        let passes = Int64(1 + max(0, self.options.attempts))
        let deadline = NIODeadline.now() + .nanoseconds(self.options.timeout.nanoseconds * passes)
        switch await self.exchange(question, before: deadline) {
        case .success(let reply):
            return .success(reply.message)
        case .failure(let failure):
            return .failure(failure.dnsError(for: question))
        }
    }

    /// Resolves without the cache or merging, recording the chain of trust step by step
    /// (`vrules dns ... --trace`).
    public func resolveTracing(_ question: DNSQuestion) async -> (result: DNSQueryResult, trace: [String]) {
        let trace = ValidationTrace()
        if self.validator == nil { trace.note("validate = false: nothing is validated") }
        let result = await self.resolveUncached(Self.lowercased(question), trace: trace)
        return (result, trace.steps)
    }

    public var ipStrategy: IPStrategy { self.options.ipStrategy }
    public var rotatesRecords: Bool { self.options.rotate }

    public func immediateResult(for question: DNSQuestion) -> DNSQueryResult? {
        let question = Self.lowercased(question)
        guard let answer = self.cache.lookup(question) else { return nil }
        return .success(self.rotated(answer))
    }

    public func resolve(_ question: DNSQuestion) async -> DNSQueryResult {
        let question = Self.lowercased(question)
        if let answer = self.cache.lookup(question) { return .success(self.rotated(answer)) }
        while true {
            let leads = self.inFlight.withLockedValue { running -> Bool in
                guard running[question] == nil else { return false }
                running[question] = []
                return true
            }
            if leads {
                // The first asker does the work in its own task; the others wait for its answer.
                let result = await self.resolveUncached(question, trace: nil)
                self.handOut(result, for: question)
                return result.map { self.rotated($0) }
            }
            let shared = await withCheckedContinuation { (continuation: CheckedContinuation<DNSQueryResult?, Never>) in
                let waiting = self.inFlight.withLockedValue { running -> Bool in
                    guard running[question] != nil else { return false }
                    running[question]!.append { continuation.resume(returning: $0) }
                    return true
                }
                // The lookup finished between the two locks: start over (likely a cache hit).
                // Also resumed with nil when the lookup we waited for was cancelled.
                if !waiting { continuation.resume(returning: nil) }
            }
            if let shared { return shared.map { self.rotated($0) } }
            if let answer = self.cache.lookup(question) { return .success(self.rotated(answer)) }
        }
    }

    /// Ends the lookup the caller led: the lookups waiting for the same answer get it, or,
    /// when the leader's own task was cancelled, nil (a cancellation is no answer for them:
    /// one of them takes over).
    private func handOut(_ result: DNSQueryResult, for question: DNSQuestion) {
        if case .failure = result, Task.isCancelled { return self.giveUp(question) }
        let waiters = self.inFlight.withLockedValue { $0.removeValue(forKey: question) ?? [] }
        for waiter in waiters { waiter(result) }
    }

    /// The lookup for `question` was cancelled: the lookups that joined it ask again.
    private func giveUp(_ question: DNSQuestion) {
        let waiters = self.inFlight.withLockedValue { $0.removeValue(forKey: question) ?? [] }
        for waiter in waiters { waiter(nil) }
    }

    /// `resolve` without a task per wait: a cached answer is delivered at once, a question
    /// already being asked gets the running lookup's answer, and a lookup that leads sends its
    /// first query at once and reads the reply when it comes (`leadByCallback`); it takes a
    /// task only to go on when that reply does not settle it, or always when validating or
    /// with several servers.
    public func startResolving(_ question: DNSQuestion, preferring executor: (any TaskExecutor)?,
                               deliver: @escaping @Sendable (DNSQueryResult) -> Void) -> DNSLookupHandle {
        let question = Self.lowercased(question)
        if let answer = self.cache.lookup(question) {
            deliver(.success(self.rotated(answer)))
            return DNSLookupHandle()
        }
        let leads = self.inFlight.withLockedValue { running -> Bool in
            guard running[question] != nil else {
                running[question] = []
                return true
            }
            running[question]!.append { [self] shared in
                if let shared {
                    deliver(shared.map { self.rotated($0) })
                } else {
                    // The lookup this one waited for was cancelled: ask again.
                    _ = self.startResolving(question, preferring: executor, deliver: deliver)
                }
            }
            return false
        }
        guard leads else { return DNSLookupHandle() }
        if self.validator == nil, self.servers.count == 1, case .success(let progress) = self.beginLookup(question) {
            return self.leadByCallback(progress, preferring: executor, deliver: deliver)
        }
        let lookup = Task(executorPreference: executor) {
            let result = await self.resolveUncached(question, trace: nil)
            self.handOut(result, for: question)
            deliver(result.map { self.rotated($0) })
        }
        return DNSLookupHandle { lookup.cancel() }
    }

    /// A lookup that leads, on one server without validation (the common case), started
    /// without a task: its first query goes out at once, and the reply is read on the asker's
    /// loop when its executor can run closures (else on the UDP reactor's thread). A reply
    /// that settles the question (most do) is cached, handed to the lookups that joined, and
    /// delivered there. Anything else goes on in a task from where it stands, within the same
    /// time bound: the next pass after a failure, the CNAME target a reply leads to, or TCP
    /// after a truncated reply.
    private func leadByCallback(_ progress: LookupProgress, preferring executor: (any TaskExecutor)?,
                                deliver: @escaping @Sendable (DNSQueryResult) -> Void) -> DNSLookupHandle {
        let question = progress.question
        let server = self.servers[0]
        let request = DNSExchangeRequest(server: server, question: DNSWireQuestion(name: question.name, type: question.type),
                                         dnssecOK: false, deadline: min(NIODeadline.now() + self.options.timeout, progress.deadline))
        let lead = LeadingLookup()
        let loop = executor as? any ClosureExecuting
        let cancelExchange = self.transport.udpExchange(request) { [self] result in
            // Finished on the asker's loop, where the lookups that joined mostly wait.
            guard let loop else { return self.finishFirstExchange(result, progress, server: server, request: request,
                                                                   lead: lead, executor: executor, deliver: deliver) }
            loop.execute { self.finishFirstExchange(result, progress, server: server, request: request,
                                                    lead: lead, executor: executor, deliver: deliver) }
        }
        lead.started(cancel: cancelExchange)
        return DNSLookupHandle { lead.cancel() }
    }

    /// The first reply (or failure) of a lookup led by callback: settled at once when it can
    /// be, else the lookup goes on in a task.
    private func finishFirstExchange(_ result: Result<DNSMessage, DNSExchangeFailure>, _ progress: LookupProgress,
                                     server: DNSServerAddress, request: DNSExchangeRequest, lead: LeadingLookup,
                                     executor: (any TaskExecutor)?, deliver: @escaping @Sendable (DNSQueryResult) -> Void) {
        let question = progress.question
        var progress = progress
        let goOn: LeadContinuation
        switch result.map({ DNSExchangeReply(message: $0, server: server, overTCP: false) }) {
        case .success(let reply) where reply.message.header.truncated:
            // Retried over TCP before its code is looked at, as `DNSTransport.exchange` does.
            goOn = .overTCP
        case .failure(.cancelled):
            // Given up: the lookups that joined ask again; the one that led gets the
            // failure, as a cancelled task's would.
            self.giveUp(question)
            deliver(.failure(Self.lookupError(.cancelled, progress)))
            return
        case let exchanged:
            guard let next = self.settle(Self.classify(exchanged, validate: false), &progress, deliver: deliver) else { return }
            goOn = next
        }
        let carried = progress
        lead.continued(in: Task(executorPreference: executor) {
            var progress = carried
            var next = goOn
            if case .overTCP = next {
                let reply = await self.transport.tcpExchange(request)
                    .map { DNSExchangeReply(message: $0, server: server, overTCP: true) }
                guard let after = self.settle(Self.classify(reply, validate: false), &progress, deliver: deliver) else { return }
                next = after
            }
            let (firstPass, worst): (Int, DNSExchangeFailure?)
            switch next {
            case .askAgain, .overTCP: (firstPass, worst) = (0, nil)
            case .nextPass(let failure): (firstPass, worst) = (1, failure)
            }
            let result = await self.lookUp(&progress, trace: nil, firstPass: firstPass, worst: worst)
            self.handOut(result, for: question)
            deliver(result.map { self.rotated($0) })
        })
    }

    /// Where a lookup led by callback goes on, in a task, when its first reply did not settle it.
    private enum LeadContinuation {
        /// The reply was truncated: the same question over TCP.
        case overTCP
        /// The reply led to a CNAME target outside the server's data.
        case askAgain
        /// The first pass failed: the next ones.
        case nextPass(DNSExchangeFailure)
    }

    /// Finishes a lookup led by callback with `reply` (classified) when it settles it: caches
    /// the answer, hands it to the lookups that joined and delivers it. Otherwise where to go on.
    private func settle(_ reply: Result<DNSExchangeReply, DNSExchangeFailure>, _ progress: inout LookupProgress,
                        deliver: @Sendable (DNSQueryResult) -> Void) -> LeadContinuation? {
        let question = progress.question
        switch reply {
        case .failure(let failure):
            return .nextPass(failure)
        case .success(let reply):
            switch self.read(reply, &progress) {
            case .askAgain:
                return .askAgain
            case .failed(let error):
                self.handOut(.failure(error), for: question)
                deliver(.failure(error))
            case .settled(let answer, let ttl, let cacheable):
                if cacheable { self.cache.store(answer, for: question, ttl: ttl) }
                self.handOut(.success(answer), for: question)
                deliver(.success(self.rotated(answer)))
            }
            return nil
        }
    }

    /// What cancels a lookup led by callback: its exchange, then the task it may go on in.
    /// The exchange's callback can run before `started` is called (a send that fails at once).
    private final class LeadingLookup: @unchecked Sendable {
        // @unchecked: `state` is only touched with `lock` held.
        private enum State {
            case starting
            case exchanging(@Sendable () -> Void)
            case continued(Task<Void, Never>)
            case cancelled
        }

        private let lock = NIOLock()
        private var state = State.starting

        func started(cancel: @escaping @Sendable () -> Void) {
            let cancelNow = self.lock.withLock { () -> Bool in
                switch self.state {
                case .starting:
                    self.state = .exchanging(cancel)
                    return false
                case .cancelled:
                    return true
                case .exchanging, .continued:
                    return false
                }
            }
            if cancelNow { cancel() }
        }

        func continued(in task: Task<Void, Never>) {
            let cancelNow = self.lock.withLock { () -> Bool in
                if case .cancelled = self.state { return true }
                self.state = .continued(task)
                return false
            }
            if cancelNow { task.cancel() }
        }

        func cancel() {
            let previous = self.lock.withLock { () -> State in
                defer { self.state = .cancelled }
                return self.state
            }
            switch previous {
            case .exchanging(let cancel): cancel()
            case .continued(let task): task.cancel()
            case .starting, .cancelled: break
            }
        }
    }

    /// Names should arrive normalised; a name in mixed case is still matched against the
    /// lower-cased names of replies and the cache rather than silently never matching.
    @inline(__always)
    static func lowercased(_ question: DNSQuestion) -> DNSQuestion {
        let hasUpperCase = question.name.utf8.withContiguousStorageIfAvailable { octets in
            octets.contains { $0 >= 0x41 && $0 <= 0x5A }
        } ?? question.name.utf8.contains { $0 >= 0x41 && $0 <= 0x5A }
        guard hasUpperCase else { return question }
        return DNSQuestion(name: question.name.lowercased(), type: question.type)
    }

    /// Rotates multi-record answers by one more position on every lookup when `rotate` is on.
    private func rotated(_ answer: DNSAnswer) -> DNSAnswer {
        guard self.options.rotate, answer.records.count > 1 else { return answer }
        let turn = self.rotationCounter.withLockedValue { counter -> Int in
            counter &+= 1
            return counter
        }
        var answer = answer
        let shift = turn % answer.records.count
        answer.records = Array(answer.records[shift...] + answer.records[..<shift])
        return answer
    }

    // MARK: - Following CNAME chains

    private func resolveUncached(_ question: DNSQuestion, trace: ValidationTrace?) async -> DNSQueryResult {
        switch self.beginLookup(question) {
        case .failure(let error):
            return .failure(error)
        case .success(var progress):
            return await self.lookUp(&progress, trace: trace, firstPass: 0, worst: nil)
        }
    }

    /// How far a lookup has come: the name it asks now, the CNAME chain followed so far, what
    /// each reply contributed (for the validator), and the bound of the whole lookup.
    private struct LookupProgress: Sendable {
        let question: DNSQuestion
        /// The whole lookup, CNAME targets asked again included, keeps the bound of one exchange.
        let deadline: NIODeadline
        var current: String
        var chain: [DNSRecord] = []
        var seen: Set<String>
        /// What the validator checks, kept only when there is one.
        var steps: [DNSSECValidator.Step] = []
    }

    /// What one accepted reply means for a lookup.
    private enum ReplyReading {
        /// The answer (before validation), and whether and how long it may be cached.
        case settled(DNSAnswer, ttl: UInt32, cacheable: Bool)
        /// The chain left the server's data: ask again for `progress.current`.
        case askAgain
        case failed(DNSError)
    }

    /// A lookup of `question` about to start. The engine normalises names first; anything
    /// that still cannot be encoded is refused before any query, rather than sent to every
    /// server in turn.
    private func beginLookup(_ question: DNSQuestion) -> Result<LookupProgress, DNSError> {
        var wire: [UInt8] = []
        wire.reserveCapacity(DNSNameCoding.maximumWireLength + 1)
        do {
            try DNSNameCoding.appendWireName(question.name, to: &wire)
        } catch {
            return .failure(DNSError(kind: .formerr, name: question.name, type: question.type,
                                     detail: "invalid name: \(error.reason)"))
        }
        let passes = Int64(1 + max(0, self.options.attempts))
        return .success(LookupProgress(question: question,
                                       deadline: NIODeadline.now() + .nanoseconds(self.options.timeout.nanoseconds * passes),
                                       current: question.name, seen: [question.name]))
    }

    /// Asks for `progress.current` until the lookup settles, starting at pass `firstPass` of the
    /// first exchange (a pass already failed with `worst` when it is not 0).
    private func lookUp(_ progress: inout LookupProgress, trace: ValidationTrace?, firstPass: Int,
                        worst: DNSExchangeFailure?) async -> DNSQueryResult {
        var firstPass = firstPass
        var worst = worst
        while true {
            let asked = DNSQuestion(name: progress.current, type: progress.question.type)
            let reply: DNSExchangeReply
            switch await self.exchange(asked, before: progress.deadline, firstPass: firstPass, worst: worst) {
            case .success(let success): reply = success
            case .failure(let failure): return .failure(Self.lookupError(failure, progress))
            }
            firstPass = 0
            worst = nil
            switch self.read(reply, &progress) {
            case .askAgain:
                continue
            case .failed(let error):
                return .failure(error)
            case .settled(var answer, var ttl, let cacheable):
                if let failure = await self.validate(&answer, &ttl, steps: progress.steps, question: progress.question,
                                                     trace: trace) {
                    return .failure(failure)
                }
                if cacheable { self.cache.store(answer, for: progress.question, ttl: ttl) }
                return .success(answer)
            }
        }
    }

    private static func lookupError(_ failure: DNSExchangeFailure, _ progress: LookupProgress) -> DNSError {
        var error = failure.dnsError(for: progress.question)
        error.usedWholeTimeBound = NIODeadline.now() >= progress.deadline
        return error
    }

    /// What `reply` (to the question for `progress.current`) says: only answer-section
    /// records are followed, by owner name, from the name asked. The one reader of replies,
    /// for the lookups in tasks and for those led by callback.
    private func read(_ reply: DNSExchangeReply, _ progress: inout LookupProgress) -> ReplyReading {
        let question = progress.question
        let message = reply.message
        var step = DNSSECValidator.Step(message: message, rrsets: [], denial: nil)
        var name = progress.current
        var records: [DNSRecord] = []
        while true {
            records = message.answers.filter {
                $0.recordClass == DNSMessage.classIN && $0.type == question.type && $0.name == name
            }.map(\.record.believed)
            if !records.isEmpty || question.type == .cname { break }
            guard let alias = message.answers.first(where: {
                $0.recordClass == DNSMessage.classIN && $0.type == .cname && $0.name == name
            }), case .cname(let target) = alias.data else { break }
            progress.chain.append(alias.record.believed)
            if self.validator != nil { step.rrsets.append(DNSQuestion(name: name, type: .cname)) }
            guard progress.chain.count <= Self.maximumChainLength, progress.seen.insert(target).inserted else {
                return .failed(DNSError(kind: .servfail, name: question.name, type: question.type,
                                        detail: "CNAME chain longer than \(Self.maximumChainLength) or looping"))
            }
            name = target
        }

        let server = self.serverNames[reply.server] ?? reply.server.description
        let chain = self.options.preserveIntermediates ? progress.chain : []
        if !records.isEmpty {
            if self.validator != nil {
                step.rrsets.append(DNSQuestion(name: name, type: question.type))
                progress.steps.append(step)
            }
            let answer = DNSAnswer(name: question.name, type: question.type, outcome: .ok, records: records,
                                   chain: chain, server: server)
            let ttl = min(records.lazy.map(\.ttl).min() ?? 0, progress.chain.lazy.map(\.ttl).min() ?? .max)
            return .settled(answer, ttl: ttl, cacheable: true)
        }

        // A chain that left the server's data: ask again for its target, unless the reply
        // already settles the target (NXDOMAIN, or an SOA of a zone that holds it).
        let settled = message.responseCode == .nxDomain
            || message.authority.contains { record in
                if case .soa = record.data { return Self.isSubdomain(name, of: record.name) }
                return false
            }
        if name != progress.current && !settled {
            if self.validator != nil { progress.steps.append(step) }
            progress.current = name
            return .askAgain
        }

        let outcome: DNSOutcome = message.responseCode == .nxDomain ? .nxdomain : .nodata
        step.denial = (name, question.type, outcome == .nxdomain)
        if self.validator != nil { progress.steps.append(step) }
        let answer = DNSAnswer(name: question.name, type: question.type, outcome: outcome, records: [],
                               chain: chain, server: server)
        let negativeTTL = Self.negativeTTL(message)
        let ttl = ([negativeTTL ?? 0] + progress.chain.map(\.ttl)).min() ?? 0
        return .settled(answer, ttl: ttl, cacheable: negativeTTL != nil)
    }

    /// Sets the answer's security when validating, caps its TTLs by what the signatures
    /// allow, and turns bogus and indeterminate verdicts into the lookup's failure.
    private func validate(_ answer: inout DNSAnswer, _ ttl: inout UInt32, steps: [DNSSECValidator.Step],
                          question: DNSQuestion, trace: ValidationTrace?) async -> DNSError? {
        guard let validator = self.validator else { return nil }
        let verdict = await validator.validate(steps, trace: trace)
        answer.security = verdict.security
        switch verdict.security.status {
        case .bogus:
            return DNSError(kind: .bogus, name: question.name, type: question.type,
                            detail: verdict.security.reason, security: verdict.security)
        case .indeterminate:
            let kind = verdict.fetchError?.kind ?? .servfail
            return DNSError(kind: kind, name: question.name, type: question.type,
                            detail: verdict.security.reason, security: verdict.security)
        case .secure, .insecure:
            if let cap = verdict.ttl, cap < ttl {
                ttl = cap
                for index in answer.records.indices { answer.records[index].ttl = min(answer.records[index].ttl, cap) }
                for index in answer.chain.indices { answer.chain[index].ttl = min(answer.chain[index].ttl, cap) }
            }
            return nil
        }
    }

    /// RFC 2308 §5: the negative TTL is the smaller of the SOA's own TTL and its MINIMUM, and
    /// at most `DNSRecord.maximumNegativeTTL`. Without an SOA the answer is not cached.
    static func negativeTTL(_ message: DNSMessage) -> UInt32? {
        for record in message.authority {
            if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum, DNSRecord.maximumNegativeTTL) }
        }
        return nil
    }

    static func isSubdomain(_ name: String, of zone: String) -> Bool {
        if zone.isEmpty || name == zone { return true }
        return name.hasSuffix("." + zone)
    }

    // MARK: - Passes over the name servers

    /// At most `1 + attempts` passes, each bounded by `timeout`, so the worst case is
    /// `(1 + attempts) × timeout` whatever the number of servers.
    /// `firstPass` > 0 goes on with a lookup whose earlier passes failed, the last with `worst`.
    private func exchange(_ question: DNSQuestion, before lookupDeadline: NIODeadline, firstPass: Int = 0,
                          worst initialWorst: DNSExchangeFailure? = nil)
        async -> Result<DNSExchangeReply, DNSExchangeFailure>
    {
        var worst: DNSExchangeFailure = initialWorst ?? .timeout
        var pass = firstPass
        while pass <= max(0, self.options.attempts) {
            if Task.isCancelled { return .failure(.cancelled) }
            let now = NIODeadline.now()
            guard now < lookupDeadline else { break }
            let deadline = min(now + self.options.timeout, lookupDeadline)
            switch await self.runPass(question, deadline: deadline, pass: pass) {
            case .success(let reply): return .success(reply)
            case .failure(let failure): worst = failure
            }
            pass += 1
        }
        return .failure(worst)
    }

    /// One pass: `numConcurrentReqs` servers asked at once; when one fails, the next server not
    /// yet asked in this pass takes its place; the first valid answer wins and cancels the rest.
    private func runPass(_ question: DNSQuestion, deadline: NIODeadline, pass: Int)
        async -> Result<DNSExchangeReply, DNSExchangeFailure>
    {
        let count = self.servers.count
        let width = max(1, self.options.numConcurrentReqs)
        let start = (pass * width) % count
        let order = (0..<count).map { self.servers[(start + $0) % count] }
        let wireQuestion = DNSWireQuestion(name: question.name, type: question.type)
        let dnssecOK = self.options.validate
        let validate = self.options.validate
        let transport = self.transport

        if width == 1 || count == 1 {
            // One server at a time: no child tasks needed.
            var worst: DNSExchangeFailure? = nil
            for server in order where NIODeadline.now() < deadline {
                let request = DNSExchangeRequest(server: server, question: wireQuestion, dnssecOK: dnssecOK, deadline: deadline)
                switch Self.classify(await transport.exchange(request), validate: validate) {
                case .success(let reply):
                    return .success(reply)
                case .failure(let failure):
                    if worst == nil || failure.rank > worst!.rank { worst = failure }
                    // The pass's time is up: report its most telling failure, as below.
                    if case .timeout = failure { return .failure(worst!) }
                }
            }
            return .failure(worst ?? .timeout)
        }

        return await withTaskGroup(of: Result<DNSExchangeReply, DNSExchangeFailure>.self) { group in
            var next = 0
            var running = 0
            var worst: DNSExchangeFailure? = nil
            while running < width && next < order.count {
                let request = DNSExchangeRequest(server: order[next], question: wireQuestion, dnssecOK: dnssecOK, deadline: deadline)
                group.addTask { Self.classify(await transport.exchange(request), validate: validate) }
                next += 1
                running += 1
            }
            while let result = await group.next() {
                running -= 1
                switch result {
                case .success(let reply):
                    group.cancelAll()
                    return .success(reply)
                case .failure(let failure):
                    if worst == nil || failure.rank > worst!.rank { worst = failure }
                    if next < order.count && NIODeadline.now() < deadline {
                        let request = DNSExchangeRequest(server: order[next], question: wireQuestion, dnssecOK: dnssecOK, deadline: deadline)
                        group.addTask { Self.classify(await transport.exchange(request), validate: validate) }
                        next += 1
                        running += 1
                    }
                }
            }
            return .failure(worst ?? .timeout)
        }
    }

    /// RFC 8914 info codes that mean the upstream's DNSSEC validation failed.
    static let bogusExtendedErrors: Set<UInt16> = [5, 6, 7, 8, 9, 10, 11, 12]

    /// Turns replies that are not answers (SERVFAIL, REFUSED, FORMERR, ...) into failures.
    static func classify(_ result: Result<DNSExchangeReply, DNSExchangeFailure>, validate: Bool)
        -> Result<DNSExchangeReply, DNSExchangeFailure>
    {
        guard case .success(let reply) = result else { return result }
        let rcode = reply.message.responseCode
        if rcode == .noError || rcode == .nxDomain { return result }
        let from = "from \(reply.server)"
        switch rcode {
        case .servFail:
            let codes = reply.message.edns?.extendedErrorCodes ?? []
            if validate, let code = codes.first(where: { Self.bogusExtendedErrors.contains($0) }) {
                return .failure(.bogus("DNSSEC validation failed \(from) (extended error \(code))"))
            }
            return .failure(.servfail("SERVFAIL \(from)"))
        case .refused:
            return .failure(.refused("REFUSED \(from)"))
        case .formErr:
            return .failure(.formerr("FORMERR \(from)"))
        default:
            return .failure(.servfail("\(rcode) \(from)"))
        }
    }
}

