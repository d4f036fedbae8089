import DNS
import Foundation
import Logging
import Metrics
import Rules

/// The part of the policy service one engine serves: the transactions pinned to that
/// engine (one Lua state), and the work of turning their requests into stage evaluations.
/// It runs on its engine's executor, so the calls between the two never switch threads;
/// in `vrules serve` that executor is an event loop, the one the connections routed here
/// are read on.
///
/// Held transactions live in the engine's Lua state, so what they hold is bounded by bytes
/// (`transactionMemory`, well inside the state's memory cap) as well as by number: no
/// client can grow them until rules have no memory left to run in. The least recently
/// used idle transactions are evicted before that could happen.
actor PolicyShard {
    typealias Configuration = PolicyService.Configuration

    static let tooManyRecipients = "452 4.5.3 Too many recipients"

    static func subject(of stage: Stage, in session: SessionInfo) -> String? {
        switch stage {
        case .helo: return session.helo
        case .mail: return session.mailFrom?.address
        case .rcpt: return session.rcpts.last?.address
        default: return nil
        }
    }

    /// The engine new transactions begin on (replaced on reload; those in progress finish
    /// on the one they began on, which runs on the same executor).
    private var engine: RuleEngine
    private nonisolated let executor: any SerialExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { self.executor.asUnownedSerialExecutor() }
    /// What the tasks that enter this shard prefer: its executor when that is also a task
    /// executor (an `EventLoopExecutor`), so that the awaits inside a stage never queue
    /// on the loop again; nil otherwise.
    nonisolated let taskExecutor: (any TaskExecutor)?
    private let index: Int
    private let configuration: Configuration
    private let logger: Logger
    /// The held transactions, with their own byte budget: each Lua state has its own cap.
    private let table = TransactionTable()
    /// Which shard each SMTP connection's transactions live on, shared by all shards.
    private let routes: ConnectionRoutes
    /// The held totals of all shards, for the gauges.
    private let totals: ShardTotals
    /// The transaction (by key) currently open on each SMTP connection.
    private var instanceOfConnection: [ConnectionKey: TransactionKey] = [:]
    private var warnings = ThrottledWarnings()
    // Metric handles made once: making one goes through the registry's lock and a label lookup.
    private var counters: [MetricKey: Counter] = [:]
    /// The handles every request touches, by `ProtocolState.metricIndex` and verdict: no
    /// label is hashed per request.
    private let requestCounters = ProtocolState.metricLabels.map {
        Counter(label: "vrules_policy_requests_total", dimensions: [("stage", $0)])
    }
    private let durationTimers = ProtocolState.metricLabels.map {
        Timer(label: "vrules_policy_request_duration_seconds", dimensions: [("stage", $0)], preferredDisplayUnit: .seconds)
    }
    private let verdictCounters = VerdictKind.allCases.map {
        (kind: $0, counter: Counter(label: "vrules_policy_verdicts_total", dimensions: [("verdict", $0.rawValue)]))
    }
    /// A metric handle's label and dimension value: looked up per request without
    /// building a string.
    private struct MetricKey: Hashable {
        var label: String
        var value: String
    }
    private let transactionsGauge = Gauge(label: "vrules_policy_transactions")
    private let transactionBytesGauge = Gauge(label: "vrules_policy_transaction_bytes")

    init(index: Int, engine: RuleEngine, configuration: Configuration, logger: Logger, routes: ConnectionRoutes,
         totals: ShardTotals) {
        self.index = index
        self.engine = engine
        self.executor = engine.executor
        self.taskExecutor = engine.executor as? any TaskExecutor
        self.configuration = configuration
        self.logger = logger
        self.routes = routes
        self.totals = totals
    }

    /// New transactions use `engine`, which must run on this shard's executor.
    func replaceEngine(_ engine: RuleEngine) {
        self.engine = engine
    }

    var currentEngine: RuleEngine { self.engine }

    var transactionCount: Int { self.table.count }
    /// The estimated bytes held transactions hold in the Lua state.
    var transactionBytes: Int { self.table.bytes }

    private func counter(_ label: String, _ dimension: String, _ value: String) -> Counter {
        let id = MetricKey(label: label, value: value)
        if let counter = self.counters[id] { return counter }
        let counter = Counter(label: label, dimensions: [(dimension, value)])
        self.counters[id] = counter
        return counter
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// The answer to one request (already checked to be `request=smtpd_access_policy`
    /// with a `client_address`).
    func decide(_ request: PolicyRequest) async -> PolicyDecision {
        await self.decide(request, key: TransactionKey(request))
    }

    /// The answer to a request its transaction has already answered every stage of (the
    /// same recipient asked again from another restriction list: two of the five requests
    /// of a message in the Postfix mix), made at once, without a task; nil when anything
    /// must happen first: a transaction begun or ended, a recipient admitted, a stage run.
    func settledDecision(_ request: PolicyRequest, key: TransactionKey) -> PolicyDecision? {
        let started = DispatchTime.now().uptimeNanoseconds
        let state = ProtocolState(request[.protocolState] ?? "")
        guard case .stage(let target) = state, target != .preq,
              let transaction = self.table[key],
              transaction.begun != nil, !transaction.removed
        else { return nil }
        // A recipient not admitted yet is the common miss: found before the session is made
        // (the parse is kept for the evaluation that follows).
        if target == .rcpt {
            guard let text = request[.recipient], transaction.recipients.contains(transaction.parsedRecipient(text)) else {
                return nil
            }
        }
        var session = Self.sessionInfo(from: request, addresses: transaction)
        Self.arrangeRecipients(of: &session, in: transaction, target: target)
        // A reused result's decision changes nothing: a stage not done yet still leaves all as it was.
        var decision = PolicyDecision.dunno
        for stage in session.stages(upTo: target) {
            let key = HeldTransaction.StageKey(stage: stage, subject: Self.subject(of: stage, in: session))
            guard case .done(let result)? = transaction.results[key] else { return nil }
            decision = self.decision(for: result, at: stage, reused: true, in: transaction, request: request)
            if result.verdict.kind.isFailure { break }
        }
        self.table.touch(transaction, now: Self.now())
        decision = Self.finalDecision(decision, target: target, transaction: transaction)
        self.recordRequest(state, started: started)
        return decision
    }

    /// The answer to one request of transaction `key` (`TransactionKey(request)`, made once
    /// by the caller: its hash is computed when it is made).
    func decide(_ request: PolicyRequest, key: TransactionKey) async -> PolicyDecision {
        let started = DispatchTime.now().uptimeNanoseconds
        let state = ProtocolState(request[.protocolState] ?? "")
        let decision: PolicyDecision
        switch state {
        case .unknown(let text):
            decision = self.answerUnknown(text, request: request)
        case .xclient:
            decision = await self.evaluate(request, key: key, target: .connect, fresh: true)
        case .clientQuery:
            decision = await self.evaluate(request, key: key, target: nil, fresh: false)
        case .stage(let stage):
            decision = await self.evaluate(request, key: key, target: stage, fresh: false)
        }
        self.recordRequest(state, started: started)
        return decision
    }

    private func recordRequest(_ state: ProtocolState, started: UInt64) {
        self.requestCounters[state.metricIndex].increment()
        self.durationTimers[state.metricIndex].recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
    }

    /// Decides `request` in a task that prefers this shard's executor (in `vrules serve` an
    /// `EventLoopExecutor`: the task then enters the shard and its engine, and every await
    /// of a stage returns, without queueing on the loop again) and passes the decision to
    /// `answer` on the shard's executor.
    func startDecision(_ request: PolicyRequest, key: TransactionKey, answer: @escaping @Sendable (PolicyDecision) -> Void) {
        Task(executorPreference: self.taskExecutor) {
            await self.decide(request, key: key, answer: answer)
        }
    }

    /// Calls `answer` on this shard's executor (the loop that writes the answer).
    private func decide(_ request: PolicyRequest, key: TransactionKey, answer: @Sendable (PolicyDecision) -> Void) async {
        answer(await self.decide(request, key: key))
    }

    private func answerUnknown(_ state: String, request: PolicyRequest) -> PolicyDecision {
        self.counter("vrules_policy_unknown_states_total", "action", self.configuration.unknownStateAction == "DUNNO" ? "dunno" : "refused")
            .increment()
        self.warn("unknown", "unknown protocol_state, answered with the configured unknown_state_action", metadata: [
            "protocol_state": "\(state.prefix(64))", "client": "\(request[.clientAddress] ?? "-")",
            "action": "\(self.configuration.unknownStateAction)",
        ])
        return PolicyDecision(action: self.configuration.unknownStateAction, stage: nil, result: nil, reused: false)
    }

    static let hostName = ProcessInfo.processInfo.hostName

    /// Runs the stages up to `target` (nil: connect and HELO only, for VRFY and ETRN) for
    /// the request's transaction; `fresh` ends what its connection held first (XCLIENT).
    private func evaluate(_ request: PolicyRequest, key: TransactionKey, target: Stage?, fresh: Bool) async -> PolicyDecision {
        let now = Self.now()
        if fresh {
            await self.finishConnection(key.connection)
            await self.finish(key)
        }
        let transaction = await self.transaction(for: key, request: request, now: now)
        defer { transaction.inFlight -= 1 }
        if !transaction.removed { self.table.touch(transaction, now: now) }
        guard let begun = transaction.begun else {
            // Not reachable: a transaction is returned begun.
            return PolicyDecision(action: SMTPReply.localError.description, stage: target, result: nil, reused: false)
        }

        var session = Self.sessionInfo(from: request, addresses: transaction)
        if target == .rcpt, let recipient = session.rcpts.first {
            if !transaction.recipients.contains(recipient) {
                if let refusal = self.admit(recipient, to: transaction, session: session, request: request) { return refusal }
                transaction.recipients.append(recipient)
            }
        }
        Self.arrangeRecipients(of: &session, in: transaction, target: target)
        let evicted = self.account(transaction, session: session)
        await self.end(evicted)

        // Without a target (VRFY, ETRN): the client's connect and HELO stages only.
        let stages = target.map(session.stages(upTo:)) ?? session.stagesBeforeRecipients.filter { $0 <= .helo }

        var decision = PolicyDecision.dunno
        for current in stages {
            let result: StageResult
            let reused: Bool
            (result, reused) = await self.result(of: current, in: transaction, begun: begun, session: session)
            decision = self.decision(for: result, at: current, reused: reused, in: transaction, request: request)
            if result.verdict.kind.isFailure { break }
        }
        decision = Self.finalDecision(decision, target: target, transaction: transaction)
        if target == .preq {
            await self.finish(transaction.key)
        }
        return decision
    }

    /// `ctx.rcpts` as the transaction holds them; at RCPT, the request's recipient (admitted
    /// already) last.
    private static func arrangeRecipients(of session: inout SessionInfo, in transaction: HeldTransaction, target: Stage?) {
        if target == .rcpt, let recipient = session.rcpts.first {
            session.rcpts = transaction.recipients.filter { $0 != recipient } + [recipient]
        } else {
            session.rcpts = transaction.recipients
        }
    }

    /// The answer a stage's result gives; a result just evaluated is logged and its headers kept.
    private func decision(for result: StageResult, at stage: Stage, reused: Bool, in transaction: HeldTransaction,
                          request: PolicyRequest) -> PolicyDecision {
        if !reused {
            self.record(result, request: request)
            transaction.pendingHeaders += result.headers
        }
        return PolicyDecision(action: PolicyDecision.action(for: result, acceptAction: self.configuration.acceptAction),
                              stage: stage, result: result, reused: reused)
    }

    /// The answer once the stages have run: `last` is the last stage's.
    private static func finalDecision(_ last: PolicyDecision, target: Stage?, transaction: HeldTransaction) -> PolicyDecision {
        var decision = last
        if target == nil && !decision.isRefusal {
            // VRFY and ETRN have no stage of their own: what passed connect and HELO is DUNNO.
            decision = .dunno
        }
        // Postfix takes one action per answer: a header the rules added goes out as the
        // answer to the next request of the transaction that would be DUNNO, once; a message
        // with several headers gets them over several answers (name the service in
        // smtpd_data_restrictions too: Postfix refuses PREPEND at end of data).
        if decision.action == "DUNNO", !transaction.pendingHeaders.isEmpty {
            decision.action = "PREPEND " + transaction.pendingHeaders.removeFirst().description
        }
        return decision
    }

    /// The stage's result for this transaction: evaluated now, awaited from an identical
    /// request already evaluating it, or reused.
    private func result(of stage: Stage, in transaction: HeldTransaction, begun: (engine: RuleEngine, transaction: RuleTransaction),
                        session: SessionInfo) async -> (StageResult, Bool) {
        let key = HeldTransaction.StageKey(stage: stage, subject: Self.subject(of: stage, in: session))
        switch transaction.results[key] {
        case .done(let done)?:
            return (done, true)
        case .running?:
            let result = await withCheckedContinuation { continuation in
                if case .running(let waiters)? = transaction.results[key] {
                    transaction.results[key] = .running(waiters: waiters + [continuation])
                }
            }
            return (result, true)
        case nil:
            transaction.results[key] = .running(waiters: [])
            var result = await begun.engine.evaluate(stage, in: begun.transaction, session: session)
            if Self.ranOutOfMemory(result) {
                // The byte budget counts what clients make transactions hold, not what rules
                // put in ctx.vars: if the state is full all the same, idle transactions go
                // before this request fails, and the stage runs once more.
                let evicted = self.evictIdleHalf(protecting: transaction)
                if !evicted.isEmpty {
                    await self.end(evicted)
                    result = await begun.engine.evaluate(stage, in: begun.transaction, session: session)
                }
            }
            if case .running(let waiters)? = transaction.results[key] {
                for waiter in waiters { waiter.resume(returning: result) }
            }
            transaction.results[key] = .done(result)
            return (result, false)
        }
    }

    /// Nil when `recipient` may join the transaction; otherwise the answer refusing it.
    private func admit(_ recipient: MailAddress, to transaction: HeldTransaction, session: SessionInfo,
                       request: PolicyRequest) -> PolicyDecision? {
        let limit: String
        if transaction.recipients.count >= self.configuration.maximumRecipients {
            limit = "recipients"
        } else if transaction.cost + 3 * TransactionCost.address(recipient) + 32 > self.configuration.transactionShare {
            limit = "bytes"
        } else {
            return nil
        }
        self.counter("vrules_policy_recipient_limit_total", "limit", limit).increment()
        self.warn("recipients", "recipient refused: the transaction holds as many recipients as it may", metadata: [
            "limit": "\(limit)", "recipients": "\(transaction.recipients.count)", "bytes": "\(transaction.cost)",
            "client": "\(request[.clientAddress] ?? "-")", "instance": "\(request[.instance] ?? "-")",
        ])
        return PolicyDecision(action: Self.tooManyRecipients, stage: .rcpt, result: nil, reused: false)
    }

    /// Updates the transaction's cost and returns the transactions evicted to keep the
    /// held total inside `transactionMemory` and `maximumTransactions`.
    private func account(_ transaction: HeldTransaction, session: SessionInfo) -> [HeldTransaction] {
        if !transaction.removed {
            self.table.setCost(transaction, to: TransactionCost.of(session, recipients: transaction.recipients))
        }
        return self.evictOverflow(protecting: transaction)
    }

    private func evictOverflow(protecting current: HeldTransaction) -> [HeldTransaction] {
        var evicted: [HeldTransaction] = []
        var reason = ""
        let table = self.table
        let maximum = max(1, self.configuration.maximumTransactions / self.totals.shardCount)
        while table.bytes > self.configuration.transactionMemory || table.count > maximum {
            reason = table.bytes > self.configuration.transactionMemory ? "memory" : "count"
            guard let victim = table.oldestIdle(excluding: current) else { break }
            self.remove(victim)
            evicted.append(victim)
        }
        if !evicted.isEmpty {
            self.counter("vrules_policy_transactions_evicted_total", "reason", reason).increment(by: Int64(evicted.count))
            self.warn("evicted-" + reason, "held transactions evicted before they ended", metadata: [
                "reason": "\(reason)", "evicted": "\(evicted.count)", "held": "\(table.count)", "bytes": "\(table.bytes)",
            ])
            self.recordGauges()
        }
        return evicted
    }

    static func ranOutOfMemory(_ result: StageResult) -> Bool {
        result.failure?.hasSuffix("memory limit exceeded") == true
    }

    /// Evicts the older half of the idle transactions (at least one), for a stage that ran
    /// out of memory.
    private func evictIdleHalf(protecting current: HeldTransaction) -> [HeldTransaction] {
        let table = self.table
        let idle = table.count - 1
        var evicted: [HeldTransaction] = []
        while evicted.count < max(1, idle / 2), let victim = table.oldestIdle(excluding: current) {
            self.remove(victim)
            evicted.append(victim)
        }
        if !evicted.isEmpty {
            self.counter("vrules_policy_transactions_evicted_total", "reason", "lua-memory").increment(by: Int64(evicted.count))
            self.warn("evicted-lua-memory", "the rules ran out of memory: held transactions evicted and the stage run again", metadata: [
                "evicted": "\(evicted.count)", "held": "\(table.count)",
            ])
            self.recordGauges()
        }
        return evicted
    }

    /// Forgets transactions idle past the timeout. Called on a timer by `PolicyServer`, so
    /// a quiet server frees them too.
    func expireIdle() async {
        let now = Self.now()
        let expired = self.table.idle(before: now - self.configuration.transactionTimeout)
        for transaction in expired { self.remove(transaction) }
        if !expired.isEmpty {
            self.counter("vrules_policy_transactions_evicted_total", "reason", "idle").increment(by: Int64(expired.count))
        }
        self.warnings.flush(now: now, logger: self.logger)
        self.recordGauges()
        await self.end(expired)
    }

    private func recordGauges() {
        let (count, bytes) = self.totals.update(shard: self.index, count: self.table.count, bytes: self.table.bytes)
        self.transactionsGauge.record(count)
        self.transactionBytesGauge.record(bytes)
    }

    private func warn(_ kind: String, _ message: Logger.Message, metadata: Logger.Metadata) {
        self.warnings.warn(kind, message, metadata: metadata, now: Self.now(), logger: self.logger)
    }

    private func record(_ result: StageResult, request: PolicyRequest) {
        self.verdictCounters.first { $0.kind == result.verdict.kind }?.counter.increment()
        // The metadata is built only when the decision line is logged at all.
        guard self.logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "stage": "\(result.stage.rawValue)",
            "client": "\(request[.clientAddress] ?? "-")",
            "instance": "\(request[.instance] ?? "-")",
            "verdict": "\(result.verdict.kind.rawValue)",
            "reply": "\(result.reply)",
        ]
        if let rule = result.decidedBy { metadata["rule"] = "\(rule)" }
        if let failure = result.failure { metadata["failure"] = "\(failure)" }
        if let recipient = request[.recipient] { metadata["recipient"] = "\(recipient)" }
        self.logger.info("decision", metadata: metadata)
    }

    /// The transaction for `key`, created (once, however many requests ask at the same
    /// time) if need be. Returned with `inFlight` counted for the caller.
    private func transaction(for key: TransactionKey, request: PolicyRequest, now: Double) async -> HeldTransaction {
        let table = self.table
        if let existing = table[key] {
            existing.inFlight += 1
            if existing.begun == nil {
                await withCheckedContinuation { existing.beginWaiters.append($0) }
            }
            return existing
        }
        let connection = key.connection
        if key.instance != nil {
            // A new instance on the same SMTP connection is its next message: the previous
            // one is over even if Postfix never sent END-OF-MESSAGE for it.
            if let previous = self.instanceOfConnection[connection], previous != key {
                await self.finish(previous)
            }
            // The first request with an instance adopts what was evaluated for the connection before it.
            let connectionKey = TransactionKey(connection: connection, instance: nil)
            if let adopted = table[connectionKey] {
                table.rekey(adopted, to: key)
                self.instanceOfConnection[connection] = key
                adopted.inFlight += 1
                if adopted.begun == nil {
                    await withCheckedContinuation { adopted.beginWaiters.append($0) }
                }
                return adopted
            }
            // Another request may have made it while this one awaited.
            if let existing = table[key] {
                existing.inFlight += 1
                if existing.begun == nil {
                    await withCheckedContinuation { existing.beginWaiters.append($0) }
                }
                return existing
            }
            self.instanceOfConnection[connection] = key
        }
        let session = Self.sessionInfo(from: request)
        let transaction = HeldTransaction(key: key, now: now, cost: TransactionCost.of(session, recipients: []))
        transaction.inFlight = 1
        // Inserted before the engine is asked, so a second first request finds it and waits.
        table.insert(transaction)
        self.routes.retain(connection)
        let evicted = self.evictOverflow(protecting: transaction)
        self.recordGauges()
        let engine = self.engine
        let ruleTransaction = await engine.beginTransaction(session)
        transaction.begun = (engine, ruleTransaction)
        for waiter in transaction.beginWaiters { waiter.resume() }
        transaction.beginWaiters = []
        if transaction.removed {
            // Finished while it was being made (a fresh XCLIENT or END-OF-MESSAGE meanwhile).
            await engine.endTransaction(ruleTransaction)
        }
        await self.end(evicted)
        return transaction
    }

    private func finish(_ key: TransactionKey) async {
        guard let transaction = self.table[key] else { return }
        self.remove(transaction)
        self.recordGauges()
        await self.end([transaction])
    }

    /// Ends whatever the connection holds: its instance-less transaction and its current instance.
    private func finishConnection(_ connection: ConnectionKey) async {
        if let current = self.instanceOfConnection[connection] { await self.finish(current) }
        await self.finish(TransactionKey(connection: connection, instance: nil))
    }

    private func remove(_ transaction: HeldTransaction) {
        guard self.table.remove(transaction.key) != nil else { return }
        self.routes.release(transaction.key.connection)
        if self.instanceOfConnection[transaction.key.connection] == transaction.key {
            self.instanceOfConnection[transaction.key.connection] = nil
        }
    }

    /// Frees the removed transactions' `ctx` in the engine they began on (one still being
    /// begun is ended by the request making it).
    private func end(_ transactions: [HeldTransaction]) async {
        for transaction in transactions {
            guard let begun = transaction.begun else { continue }
            await begun.engine.endTransaction(begun.transaction)
        }
    }

    /// `ctx` from the request's attributes.
    static func sessionInfo(from request: PolicyRequest, addresses: HeldTransaction? = nil) -> SessionInfo {
        var info = SessionInfo(clientIP: request[.clientAddress] ?? "unknown")
        info.clientPort = request[.clientPort].flatMap(Int.init)
        if let name = request[.clientName], name != "unknown" { info.clientName = name }
        info.serverIP = request[.serverAddress]
        // The authserv-id of Authentication-Results and the receiver of Received-SPF: Postfix
        // does not send its own name, so the name of the host vrules runs on stands in.
        info.serverName = request[.serverName] ?? Self.hostName
        info.helo = request[.heloName]
        if let state = request[.protocolState], ProtocolState.carriesSender(state) {
            let sender = request.value(.sender) ?? ""
            info.mailFrom = addresses?.parsedSender(sender) ?? MailAddress(sender)
        }
        if let recipient = request[.recipient] { info.rcpts = [addresses?.parsedRecipient(recipient) ?? MailAddress(recipient)] }
        if request[.saslMethod] != nil || request[.saslUsername] != nil {
            info.authMechanism = request[.saslMethod]
            info.authUsername = request[.saslUsername]
        }
        if request[.encryptionProtocol] != nil || request[.encryptionCipher] != nil {
            info.tls = SessionInfo.TLSInfo(version: request[.encryptionProtocol], cipher: request[.encryptionCipher],
                                           sni: request[.tlsSNI] ?? request[.serverName])
        }
        return info
    }
}
