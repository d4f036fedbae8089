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
        let waiters = self.inFlight.withLockedValue { $0.removeValue(forKey: question) ?? [] }
        let cancelled: Bool
        if case .failure = result, Task.isCancelled { cancelled = true } else { cancelled = false }
        for waiter in waiters { waiter(cancelled ? nil : result) }
    }

    /// `resolve` without a task per wait: a cached answer is delivered at once, a question
    /// already being asked gets the running lookup's answer, and only a lookup that leads runs
    /// in a task (the exchange itself is asynchronous).
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
        let lookup = Task(executorPreference: executor) {
            let result = await self.resolveUncached(question, trace: nil)
            self.handOut(result, for: question)
            deliver(result.map { self.rotated($0) })
        }
        return DNSLookupHandle { lookup.cancel() }
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
        // The engine normalises names first; anything that still cannot be encoded is refused
        // here, before any query, rather than sent to every server in turn.
        do {
            var wire: [UInt8] = []
            wire.reserveCapacity(DNSNameCoding.maximumWireLength + 1)
            try DNSNameCoding.appendWireName(question.name, to: &wire)
        } catch {
            return .failure(DNSError(kind: .formerr, name: question.name, type: question.type,
                                     detail: "invalid name: \(error.reason)"))
        }
        var chain: [DNSRecord] = []
        var current = question.name
        var seen: Set<String> = [question.name]
        // What each response contributed, for the validator.
        var steps: [DNSSECValidator.Step] = []
        // The whole lookup, CNAME targets asked again included, keeps the bound of one exchange.
        let passes = Int64(1 + max(0, self.options.attempts))
        let lookupDeadline = NIODeadline.now() + .nanoseconds(self.options.timeout.nanoseconds * passes)

        while true {
            let asked = DNSQuestion(name: current, type: question.type)
            let reply: DNSExchangeReply
            switch await self.exchange(asked, before: lookupDeadline) {
            case .success(let success): reply = success
            case .failure(let failure):
                var error = failure.dnsError(for: question)
                error.usedWholeTimeBound = NIODeadline.now() >= lookupDeadline
                return .failure(error)
            }
            let message = reply.message
            var step = DNSSECValidator.Step(message: message, rrsets: [], denial: nil)

            // Only answer-section records are followed, by owner name, from the name asked.
            var name = current
            var records: [DNSRecord] = []
            while true {
                records = message.answers.filter {
                    $0.recordClass == DNSMessage.classIN && $0.type == question.type && $0.name == name
                }.map(\.record)
                if !records.isEmpty || question.type == .cname { break }
                guard let alias = message.answers.first(where: {
                    $0.recordClass == DNSMessage.classIN && $0.type == .cname && $0.name == name
                }), case .cname(let target) = alias.data else { break }
                chain.append(alias.record)
                step.rrsets.append(DNSQuestion(name: name, type: .cname))
                guard chain.count <= Self.maximumChainLength, seen.insert(target).inserted else {
                    return .failure(DNSError(kind: .servfail, name: question.name, type: question.type,
                                             detail: "CNAME chain longer than \(Self.maximumChainLength) or looping"))
                }
                name = target
            }

            let server = self.serverNames[reply.server] ?? reply.server.description
            if !records.isEmpty {
                step.rrsets.append(DNSQuestion(name: name, type: question.type))
                steps.append(step)
                var answer = DNSAnswer(name: question.name, type: question.type, outcome: .ok, records: records,
                                       chain: self.options.preserveIntermediates ? chain : [], server: server)
                var ttl = (records + chain).map(\.ttl).min() ?? 0
                if let failure = await self.validate(&answer, &ttl, steps: steps, question: question, trace: trace) {
                    return .failure(failure)
                }
                self.cache.store(answer, for: question, ttl: ttl)
                return .success(answer)
            }

            // A chain that left the server's data: ask again for its target, unless the reply
            // already settles the target (NXDOMAIN, or an SOA of a zone that holds it).
            let settled = message.responseCode == .nxDomain
                || message.authority.contains { record in
                    if case .soa = record.data { return Self.isSubdomain(name, of: record.name) }
                    return false
                }
            if name != current && !settled {
                steps.append(step)
                current = name
                continue
            }

            let outcome: DNSOutcome = message.responseCode == .nxDomain ? .nxdomain : .nodata
            step.denial = (name, question.type, outcome == .nxdomain)
            steps.append(step)
            var answer = DNSAnswer(name: question.name, type: question.type, outcome: outcome, records: [],
                                   chain: self.options.preserveIntermediates ? chain : [], server: server)
            let negativeTTL = Self.negativeTTL(message)
            var ttl = ([negativeTTL ?? 0] + chain.map(\.ttl)).min() ?? 0
            if let failure = await self.validate(&answer, &ttl, steps: steps, question: question, trace: trace) {
                return .failure(failure)
            }
            if negativeTTL != nil {
                self.cache.store(answer, for: question, ttl: ttl)
            }
            return .success(answer)
        }
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

    /// RFC 2308 §5: the negative TTL is the smaller of the SOA's own TTL and its MINIMUM.
    /// Without an SOA the answer is not cached.
    static func negativeTTL(_ message: DNSMessage) -> UInt32? {
        for record in message.authority {
            if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum) }
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
    private func exchange(_ question: DNSQuestion, before lookupDeadline: NIODeadline)
        async -> Result<DNSExchangeReply, DNSExchangeFailure>
    {
        var worst: DNSExchangeFailure = .timeout
        for pass in 0...max(0, self.options.attempts) {
            if Task.isCancelled { return .failure(.cancelled) }
            let now = NIODeadline.now()
            guard now < lookupDeadline else { break }
            let deadline = min(now + self.options.timeout, lookupDeadline)
            switch await self.runPass(question, deadline: deadline, pass: pass) {
            case .success(let reply): return .success(reply)
            case .failure(let failure): worst = failure
            }
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

