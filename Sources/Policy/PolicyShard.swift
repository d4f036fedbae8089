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

    static let tooManyRecipients = RecipientLimit.reply.description

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
    /// `transactionMemory` follows the engine's memory cap across reloads (`replaceEngine`).
    private var configuration: Configuration
    /// `Configuration.stageObserver`, which no reload changes.
    private let stageObserver: (@Sendable (StageResult, PolicyRequest) -> Void)?
    /// `Configuration.varsObserver`, which no reload changes either.
    private let varsObserver: (@Sendable ([String: String]) -> Void)?
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
    /// Headers the rules added that no answer could carry before their transaction ended.
    private let undeliveredHeaders = Counter(label: "vrules_policy_headers_undelivered_total")
    /// `[policy] dry_run`: the temporary and the permanent refusals answered DUNNO instead.
    private let dryRunRefusals = [
        Counter(label: "vrules_policy_dry_run_refusals_total", dimensions: [("kind", "temporary")]),
        Counter(label: "vrules_policy_dry_run_refusals_total", dimensions: [("kind", "permanent")]),
    ]
    private let verdictCounters = VerdictKind.allCases.map {
        (kind: $0, counter: Counter(label: "vrules_policy_verdicts_total", dimensions: [("verdict", $0.rawValue)]))
    }
    /// The decisions of each rule by verdict (`vrules_rules_decisions_total`): which rule
    /// refuses how much mail. A script may make rules in a loop, so at most
    /// `ruleSeriesLimit` rule names of one load of the rules get series of their own here;
    /// the decisions of the others count under `ruleSeriesOverflow`.
    private var ruleCounters: [RuleVerdict: Counter] = [:]
    /// The failures of each rule (`vrules_rules_failures_total`): a script error or a limit
    /// that deferred the stage 451 4.3.0, which the decisions count as a `defer` like any other.
    private var failureCounters: [String: Counter] = [:]
    private var ruleNames: Set<String> = []
    static let ruleSeriesLimit = 1_000
    static let ruleSeriesOverflow = "(other rules)"
    private struct RuleVerdict: Hashable {
        var rule: String
        var verdict: VerdictKind
    }
    /// A metric handle's label and dimension value: looked up per request without
    /// building a string.
    private struct MetricKey: Hashable {
        var label: String
        var value: String
    }
    private let transactionsGauge = Gauge(label: "vrules_policy_transactions")
    private let transactionBytesGauge = Gauge(label: "vrules_policy_transaction_bytes")

    /// Asks for the rule engines to be loaded again, when the rules' own data fill this
    /// shard's Lua state (`noteRulesMemoryFull`).
    private let requestRestart: @Sendable () -> Void
    /// When this shard last asked, so that a script that fills its memory again at once
    /// causes a restart every `restartInterval` at most.
    private var lastRestartRequest: Double = -.infinity
    static let restartInterval: Double = 10

    init(index: Int, engine: RuleEngine, configuration: Configuration, logger: Logger, routes: ConnectionRoutes,
         totals: ShardTotals, requestRestart: @escaping @Sendable () -> Void = {}) {
        self.requestRestart = requestRestart
        self.index = index
        self.engine = engine
        self.executor = engine.executor
        self.taskExecutor = engine.executor as? any TaskExecutor
        self.configuration = configuration
        self.stageObserver = configuration.stageObserver
        self.varsObserver = configuration.varsObserver
        self.logger = logger
        self.routes = routes
        self.totals = totals
    }

    /// The `[policy]` settings a reload applies, from now on.
    func apply(_ settings: PolicyService.ReloadedSettings) {
        self.configuration.maximumRecipients = settings.maximumRecipients
        self.configuration.unknownStateAction = settings.unknownStateAction
        self.configuration.dryRun = settings.dryRun
    }

    /// New transactions use `engine`, which must run on this shard's executor: the shard
    /// calls into it without a hop.
    func replaceEngine(_ engine: RuleEngine) {
        precondition((engine.executor as AnyObject) === (self.executor as AnyObject), "an engine runs on its shard's executor")
        // Held transactions keep the share of the Lua state they were given: a reload that
        // changes `[limits] memory` moves their bound (and a transaction's share) with it, so
        // a smaller cap is not filled by transactions sized for the larger one.
        let old = self.engine.assumeIsolatedByConstruction { $0.memoryLimit }
        let new = engine.assumeIsolatedByConstruction { $0.memoryLimit }
        if old > 0, new > 0, old != new {
            let scaled = Double(self.configuration.transactionMemory) * Double(new) / Double(old)
            self.configuration.transactionMemory = max(1, Int(scaled.rounded()))
        }
        self.engine = engine
        // The names the new rules decide under get series of their own again: the bound is
        // per load, so rules renamed over many reloads never push today's into the overflow.
        self.ruleCounters.removeAll()
        self.failureCounters.removeAll()
        self.ruleNames.removeAll()
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

    private func ruleCounter(_ rule: String, _ verdict: VerdictKind) -> Counter {
        if let counter = self.ruleCounters[RuleVerdict(rule: rule, verdict: verdict)] { return counter }
        let key = RuleVerdict(rule: self.seriesName(of: rule), verdict: verdict)
        if let counter = self.ruleCounters[key] { return counter }
        let counter = Counter(label: "vrules_rules_decisions_total", dimensions: [("rule", key.rule), ("verdict", verdict.rawValue)])
        self.ruleCounters[key] = counter
        return counter
    }

    /// The failure counter of a series name (`seriesName(of:)`).
    private func failureCounter(_ name: String) -> Counter {
        if let counter = self.failureCounters[name] { return counter }
        let counter = Counter(label: "vrules_rules_failures_total", dimensions: [("rule", name)])
        self.failureCounters[name] = counter
        return counter
    }

    /// `rule`, or `ruleSeriesOverflow` once `ruleSeriesLimit` other names have series of their own.
    private func seriesName(of rule: String) -> String {
        if self.ruleNames.contains(rule) { return rule }
        guard self.ruleNames.count < Self.ruleSeriesLimit else { return Self.ruleSeriesOverflow }
        self.ruleNames.insert(rule)
        return rule
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// A rule that failed defers every stage it runs in: an error line at every log level,
    /// once a second per rule (with how many more since), so that a script broken in
    /// production shows even where decisions are not logged, without a line per request.
    private func recordFailure(_ failure: String, of result: StageResult, request: PolicyRequest) {
        let rule = self.seriesName(of: result.decidedBy ?? Self.noRule)
        self.failureCounter(rule).increment()
        self.warnings.warn("failure " + rule, "a rule failed: the stage is deferred", metadata: [
            "rule": "\(rule)", "stage": "\(result.stage.rawValue)", "failure": "\(failure)",
            "reply": "\(result.reply)", "client": "\(request[.clientAddress] ?? "-")",
        ], level: .error, now: Self.now(), logger: self.logger)
    }

    /// The series and log key of a failure outside any rule.
    static let noRule = "(no rule)"

    /// The answer to a request its transaction has already answered every stage of (the
    /// same recipient asked again from another restriction list: two of the five requests
    /// of a message in the Postfix mix), made at once, without a task; nil when anything
    /// must happen first: a transaction begun or ended, a recipient admitted, a stage run.
    func settledDecision(_ request: PolicyRequest, key: TransactionKey) -> PolicyDecision? {
        let started = DispatchTime.now().uptimeNanoseconds
        let state = ProtocolState(request[.protocolState] ?? "")
        guard case .stage(let target) = state, target != .preq,
              let transaction = self.table[key], !transaction.removed
        else { return nil }
        // A recipient not admitted yet is the common miss: found before the session is made
        // (the parse is kept for the evaluation that follows).
        if target == .rcpt {
            guard let text = request[.recipient], transaction.recipients.contains(transaction.parsedRecipient(text)) else {
                return nil
            }
        }
        // Only what picks the stages and their subjects: the request's recipient is the
        // last of `ctx.rcpts`, the only one a key names.
        let session = Self.stageSubjects(from: request, addresses: transaction)
        // A reused result's decision changes nothing: a stage not done yet still leaves all as it was.
        // The answer is the last stage's, or the first failure's: made once, for that stage.
        var deciding: (stage: Stage, result: StageResult)?
        for stage in session.stages(upTo: target) {
            let key = HeldTransaction.StageKey(stage: stage, subject: Self.subject(of: stage, in: session))
            guard case .done(let result)? = transaction.results[key] else { return nil }
            deciding = (stage, result)
            if result.verdict.kind.isFailure { break }
        }
        var decision = PolicyDecision.dunno
        if let deciding {
            decision = self.decision(for: deciding.result, at: deciding.stage, reused: true, in: transaction, request: request)
        }
        self.table.touch(transaction, now: Self.now())
        decision = self.finalDecision(decision, target: target, transaction: transaction, request: request)
        self.observeVars(of: transaction)
        self.recordRequest(state, started: started)
        return decision
    }

    /// The answer to one request of transaction `key` (`TransactionKey(request)`, made once
    /// by the caller: its hash is computed when it is made), already checked to be
    /// `request=smtpd_access_policy` with a `client_address`.
    func decide(_ request: PolicyRequest, key: TransactionKey) async -> PolicyDecision {
        switch self.decideNow(request, key: key) {
        case .decided(let decision): return decision
        case .waiting(let pending): return await self.complete(pending)
        }
    }

    /// The answer to one request of transaction `key` when it can be made at once, as most
    /// can: everything up to the stages runs on this shard's executor, the engine's too, and
    /// a stage whose DNS answers are at hand (zone data, a warm cache) never suspends.
    /// Otherwise where the decision stands, for `complete`.
    func decideNow(_ request: PolicyRequest, key: TransactionKey) -> DecisionOutcome {
        let started = DispatchTime.now().uptimeNanoseconds
        let state = ProtocolState(request[.protocolState] ?? "")
        let start: PassStart
        switch state {
        case .unknown(let text):
            start = .refused(self.answerUnknown(text, request: request))
        case .xclient:
            start = self.beginPass(request, key: key, target: .connect, fresh: true)
        case .clientQuery:
            start = self.beginPass(request, key: key, target: nil, fresh: false)
        case .stage(let stage):
            start = self.beginPass(request, key: key, target: stage, fresh: false)
        }
        let decision: PolicyDecision
        switch start {
        case .refused(let refusal):
            decision = self.configuration.dryRun && refusal.isRefusal ? self.notEnforced(refusal, request: request) : refusal
        case .pass(let pass):
            if let wait = self.advance(pass) {
                return .waiting(PendingDecision(pass: pass, wait: wait, state: state, started: started))
            }
            decision = self.conclude(pass)
        }
        self.recordRequest(state, started: started)
        return .decided(decision)
    }

    /// Awaits what a decision waits for, runs the rest of its stages and makes it.
    func complete(_ pending: PendingDecision) async -> PolicyDecision {
        let pass = pending.pass
        var wait: StageWait? = pending.wait
        while let current = wait {
            wait = await self.resume(pass, after: current)
            if wait == nil { wait = self.advance(pass) }
        }
        let decision = self.conclude(pass)
        self.recordRequest(pending.state, started: pending.started)
        return decision
    }

    private func recordRequest(_ state: ProtocolState, started: UInt64) {
        self.requestCounters[state.metricIndex].increment()
        self.durationTimers[state.metricIndex].recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
    }

    /// Completes a decision in a task that prefers this shard's executor (in `vrules serve`
    /// an `EventLoopExecutor`: the task enters the shard and its engine, and every await of
    /// a stage returns, without queueing on the loop again) and passes it to `answer` on the
    /// shard's executor.
    func startCompletion(_ pending: PendingDecision, answer: @escaping @Sendable (PolicyDecision) -> Void) {
        Task(executorPreference: self.taskExecutor) {
            await self.complete(pending, answer: answer)
        }
    }

    private func complete(_ pending: PendingDecision, answer: @Sendable (PolicyDecision) -> Void) async {
        answer(await self.complete(pending))
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

    /// The pass a request makes through its transaction's stages up to `target` (nil:
    /// connect and HELO only, for VRFY and ETRN), or the refusal of a recipient past the
    /// transaction's bounds; `fresh` ends what its connection held first (XCLIENT).
    private func beginPass(_ request: PolicyRequest, key: TransactionKey, target: Stage?, fresh: Bool) -> PassStart {
        let now = Self.now()
        if fresh {
            self.finishConnection(key.connection)
            self.finish(key)
        }
        let held = self.heldTransaction(for: key)
        var session = Self.sessionInfo(from: request, addresses: held)
        let transaction = held ?? self.makeTransaction(for: key, session: session, request: request, now: now)
        if !transaction.removed { self.table.touch(transaction, now: now) }
        if target == .rcpt, let recipient = session.rcpts.first, !transaction.recipients.contains(recipient) {
            if let refusal = self.admit(recipient, to: transaction, session: session, request: request) {
                return .pass(StagePass(request: request, transaction: transaction, session: session, concluded: refusal, target: target))
            }
            transaction.recipients.append(recipient)
        }
        if self.configuration.dryRun, target == .data || target == .preq, Self.everyRecipientRefused(in: transaction, request: request) {
            // Enforced, the client would get no further: no rule runs where it never would,
            // so a dry run logs only the refusals enforcement sends.
            return .pass(StagePass(request: request, transaction: transaction, session: session, concluded: .dunno, target: target))
        }
        Self.arrangeRecipients(of: &session, in: transaction, target: target)
        self.end(self.account(transaction, session: session))
        // Without a target (VRFY, ETRN): the client's connect and HELO stages only.
        let stages = target.map(session.stages(upTo:)) ?? session.stagesBeforeRecipients.filter { $0 <= .helo }
        return .pass(StagePass(request: request, transaction: transaction, session: session, stages: stages, target: target))
    }

    /// In a dry run, at DATA or END-OF-MESSAGE: whether every recipient Postfix accepted
    /// (its `recipient_count`) is one the rules refused, answered `DUNNO` only because of the
    /// dry run. Postfix may accept recipients without asking (a permit before the policy
    /// service), so the rules' view alone does not tell; without a count, the rules run.
    private static func everyRecipientRefused(in transaction: HeldTransaction, request: PolicyRequest) -> Bool {
        guard transaction.recipients.isEmpty, let text = request["recipient_count"], let accepted = Int(text), accepted > 0 else {
            return false
        }
        return transaction.recipientsRefusedByRules >= accepted
    }

    /// Runs the pass's stages on from where it stands, until every one has its result (nil)
    /// or one must wait.
    private func advance(_ pass: StagePass) -> StageWait? {
        while pass.next < pass.stages.count {
            let stage = pass.stages[pass.next]
            let key = HeldTransaction.StageKey(stage: stage, subject: Self.subject(of: stage, in: pass.session))
            switch pass.transaction.results[key] {
            case .done(let result)?:
                self.apply(result, reused: true, to: pass)
            case .running?:
                return .identical(key)
            case nil:
                // Nothing can ask for the stage while it runs without waiting: it is marked
                // running (for identical requests to wait for) only if it waits.
                switch self.evaluateNow(stage, for: pass) {
                case .finished(let result):
                    if let wait = self.settle(result, key: key, retried: false, pass: pass) { return wait }
                case .waiting(let evaluation):
                    return self.wait(for: evaluation, key: key, retried: false, in: pass)
                }
            }
        }
        return nil
    }

    /// Awaits what a stage waits for and takes its result.
    private func resume(_ pass: StagePass, after wait: StageWait) async -> StageWait? {
        switch wait {
        case .answers(let evaluation, let key, let retried):
            let result = await pass.transaction.begun.engine.finish(evaluation)
            return self.settle(result, key: key, retried: retried, pass: pass)
        case .identical(let key):
            let transaction = pass.transaction
            switch transaction.results[key] {
            case .done(let result)?:
                // Finished before this request's task ran.
                self.apply(result, reused: true, to: pass)
            case .running?:
                let result = await withCheckedContinuation { continuation in
                    // No suspension since the check above: the stage is still running.
                    if case .running(let waiters)? = transaction.results[key] {
                        transaction.results[key] = .running(waiters: waiters + [continuation])
                    }
                }
                self.apply(result, reused: true, to: pass)
            case nil:
                // Not reachable (a stage's entry is never removed): `advance` evaluates it.
                break
            }
            return nil
        }
    }

    /// Files a result this request evaluated, hands it to the identical requests waiting
    /// for it, and moves past its stage. If the Lua state was full, idle transactions go
    /// first and the stage runs once more: the byte budget counts what clients make
    /// transactions hold, not what rules put in `ctx.vars`.
    private func settle(_ result: StageResult, key: HeldTransaction.StageKey, retried: Bool, pass: StagePass) -> StageWait? {
        if Self.ranOutOfMemory(result) {
            if !retried {
                let evicted = self.evictIdleHalf(protecting: pass.transaction)
                if !evicted.isEmpty {
                    self.end(evicted)
                    switch self.evaluateNow(key.stage, for: pass) {
                    case .finished(let again): return self.settle(again, key: key, retried: true, pass: pass)
                    case .waiting(let evaluation): return self.wait(for: evaluation, key: key, retried: true, in: pass)
                    }
                }
            }
            self.noteRulesMemoryFull(pass.transaction.begun.engine)
        }
        if case .running(let waiters)? = pass.transaction.results.updateValue(.done(result), forKey: key) {
            for waiter in waiters { waiter.resume(returning: result) }
        }
        self.apply(result, reused: false, to: pass)
        return nil
    }

    /// An evaluation of the stage under `key` waits for DNS answers: the stage is marked
    /// running, if it is not yet, so identical requests wait for its result.
    private func wait(for evaluation: PendingStageEvaluation, key: HeldTransaction.StageKey, retried: Bool,
                      in pass: StagePass) -> StageWait {
        if pass.transaction.results[key] == nil { pass.transaction.results[key] = .running(waiters: []) }
        return .answers(evaluation, key: key, retried: retried)
    }

    /// Starts the stage in the engine the transaction began on, which runs on this shard's
    /// executor (`replaceEngine` checks it): called without a hop.
    private func evaluateNow(_ stage: Stage, for pass: StagePass) -> StageEvaluation {
        let begun = pass.transaction.begun
        let session = pass.session
        return begun.engine.assumeIsolatedByConstruction { $0.evaluateNow(stage, in: begun.transaction, session: session) }
    }

    /// Takes the result of the pass's current stage: its answer, and the next stage, if the
    /// result lets the pass go on.
    private func apply(_ result: StageResult, reused: Bool, to pass: StagePass) {
        let stage = pass.stages[pass.next]
        pass.decision = self.decision(for: result, at: stage, reused: reused, in: pass.transaction, request: pass.request)
        pass.next = result.verdict.kind.isFailure ? pass.stages.count : pass.next + 1
    }

    /// The answer once the pass is over; END-OF-MESSAGE ends the transaction.
    private func conclude(_ pass: StagePass) -> PolicyDecision {
        pass.transaction.inFlight -= 1
        // A recipient the rules refused is not one of the message's: `ctx.rcpts` holds the
        // recipients accepted so far, as `vrules run` and `vrules test` play them. Admitted
        // before its stages ran, it leaves again; asked again, it is admitted again.
        if pass.target == .rcpt, pass.decision.isRefusal, let recipient = pass.session.rcpts.last {
            pass.transaction.recipients.removeAll { $0 == recipient }
        }
        let decision = self.finalDecision(pass.decision, target: pass.target, transaction: pass.transaction, request: pass.request)
        self.observeVars(of: pass.transaction)
        if pass.target == .preq {
            self.finish(pass.transaction.key)
        }
        return decision
    }

    /// Gives `varsObserver` the transaction's `ctx.vars`, read from its engine's Lua state.
    private func observeVars(of transaction: HeldTransaction) {
        guard let observer = self.varsObserver else { return }
        let begun = transaction.begun
        observer(begun.engine.assumeIsolatedByConstruction { $0.vars(of: begun.transaction) })
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

    /// The most headers a held transaction keeps for delivery. Postfix takes one per answer,
    /// so a message gets a handful; a rule that adds one per recipient or in a loop (a
    /// mistake) must not grow a held transaction, outside the Lua state's bound, without end.
    /// The rest are counted as undelivered at once.
    static let maximumPendingHeaders = 100

    /// The answer a stage's result gives; a result just evaluated is logged and its headers kept.
    private func decision(for result: StageResult, at stage: Stage, reused: Bool, in transaction: HeldTransaction,
                          request: PolicyRequest) -> PolicyDecision {
        if !reused {
            self.record(result, request: request)
            if stage.isEndOfData {
                self.dropHeadersAtEndOfData(result.headers)
            } else {
                self.keep(result.headers, in: transaction)
            }
        }
        return PolicyDecision(action: PolicyDecision.action(for: result, acceptAction: self.configuration.acceptAction),
                              stage: stage, result: result, reused: reused)
    }

    /// Keeps headers for the answers to come, up to `maximumPendingHeaders`.
    private func keep(_ headers: [MessageHeader], in transaction: HeldTransaction) {
        let room = max(0, Self.maximumPendingHeaders - transaction.pendingHeaders.count)
        transaction.pendingHeaders += headers.prefix(room)
        if headers.count > room {
            self.undeliveredHeaders.increment(by: Int64(headers.count - room))
            self.warn("headers-limit", "headers past the limit a message holds are dropped", metadata: [
                "dropped": "\(headers.count - room)", "limit": "\(Self.maximumPendingHeaders)", "first": "\(headers[room].name)",
            ])
        }
    }

    /// Headers added at preq: no answer can carry them (END-OF-MESSAGE takes no PREPEND).
    private func dropHeadersAtEndOfData(_ headers: [MessageHeader]) {
        guard let first = headers.first else { return }
        self.undeliveredHeaders.increment(by: Int64(headers.count))
        self.warn("headers-at-end-of-data", "headers added at preq cannot reach the message: \(Stage.endOfDataHeaderAdvice)",
                  metadata: ["headers": "\(headers.count)", "first": "\(first.name)"])
    }

    /// The answer once the stages have run: `last` is the last stage's.
    private func finalDecision(_ last: PolicyDecision, target: Stage?, transaction: HeldTransaction,
                               request: PolicyRequest) -> PolicyDecision {
        var decision = last
        if target == nil && !decision.isRefusal {
            // VRFY and ETRN have no stage of their own: what passed connect and HELO is DUNNO.
            decision = .dunno
        }
        if decision.isRefusal {
            if self.configuration.dryRun {
                // The message still comes: the headers the refusing stage added (its
                // results, e.g. `Received-SPF: fail`) ride on the DUNNO answers as they would
                // on any other.
                decision = self.notEnforced(decision, request: request)
            } else if decision.stage != .rcpt {
                // Refused anywhere but at one recipient, the transaction sends no message:
                // its headers have none to reach, and are not undelivered.
                transaction.pendingHeaders.removeAll()
            }
        }
        // Postfix takes one action per answer: a header the rules added goes out as the
        // answer to the next request of the transaction that would be DUNNO, once; a message
        // with several headers gets them over several answers (name the service in
        // smtpd_data_restrictions too). Postfix ignores PREPEND at end of data, with a warning:
        // what is left then is reported when the transaction ends (`end`).
        if decision.action == "DUNNO", target != .preq, !transaction.pendingHeaders.isEmpty {
            decision.action = "PREPEND " + transaction.pendingHeaders.removeFirst().description
        }
        return decision
    }

    /// `[policy] dry_run`: the refusal `decision` would send, logged and counted, and `DUNNO`
    /// answered in its place (a header waiting for an answer may then ride on it). A stage
    /// result reused for a repeated request is answered without another line or count:
    /// answered DUNNO, Postfix goes on to ask from its next restriction list, where an
    /// enforced refusal would have ended the recipient, and that is one refusal, not two.
    private func notEnforced(_ decision: PolicyDecision, request: PolicyRequest) -> PolicyDecision {
        var answered = decision
        answered.action = "DUNNO"
        guard !decision.reused else { return answered }
        let permanent = decision.action.utf8.first == UInt8(ascii: "5")
        self.dryRunRefusals[permanent ? 1 : 0].increment()
        self.logger.info("dry run: answered DUNNO in place of a refusal", metadata: [
            "would": "\(decision.action)", "stage": "\(decision.stage?.rawValue ?? "-")",
            "rule": "\(decision.result?.decidedBy ?? "-")",
            "client": "\(request[.clientAddress] ?? "-")", "instance": "\(request[.instance] ?? "-")",
            "recipient": "\(request[.recipient] ?? "-")",
        ])
        return answered
    }

    /// Nil when `recipient` may join the transaction; otherwise the answer refusing it.
    private func admit(_ recipient: MailAddress, to transaction: HeldTransaction, session: SessionInfo,
                       request: PolicyRequest) -> PolicyDecision? {
        let limit: String
        if transaction.recipients.count >= self.configuration.maximumRecipients {
            limit = "recipients"
        } else if RecipientLimit.exceeds(share: self.configuration.transactionShare, cost: transaction.cost, adding: recipient) {
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

    /// A stage ran out of memory with no held transaction left to evict, or again after
    /// evicting: if what stays in the Lua state after the collection that follows a memory
    /// error is still half its cap, it is the rules' own data (a table a script fills from
    /// one transaction to the next), which nothing but a new state frees. Every later stage
    /// would fail the same way, deferring all mail, so the engines are loaded again, as a
    /// SIGHUP does. A stage that only asked for too much at once leaves little behind and
    /// restarts nothing.
    private func noteRulesMemoryFull(_ engine: RuleEngine) {
        guard engine === self.engine else { return }  // an engine already replaced is draining
        let (used, limit) = engine.assumeIsolatedByConstruction { ($0.memoryUsed, $0.memoryLimit) }
        let now = Self.now()
        guard used >= limit / 2, now - self.lastRestartRequest >= Self.restartInterval else { return }
        self.lastRestartRequest = now
        self.logger.error("the rules' memory stays full: loading the rule engines again", metadata: [
            "used": "\(used)", "limit": "\(limit)", "held": "\(self.table.count)",
        ])
        self.requestRestart()
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
    func expireIdle() {
        let now = Self.now()
        let expired = self.table.idle(before: now - self.configuration.transactionTimeout)
        for transaction in expired { self.remove(transaction) }
        if !expired.isEmpty {
            self.counter("vrules_policy_transactions_evicted_total", "reason", "idle").increment(by: Int64(expired.count))
        }
        self.warnings.flush(now: now, logger: self.logger)
        self.recordGauges()
        self.end(expired)
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
        self.stageObserver?(result, request)
        self.verdictCounters.first { $0.kind == result.verdict.kind }?.counter.increment()
        if let rule = result.decidedBy { self.ruleCounter(rule, result.verdict.kind).increment() }
        // The rules' own failures (451 4.3.0), not DNS trouble no rule caught (451 4.4.3),
        // which vrules_dns_queries_total{outcome} counts and which is no fault of theirs.
        if let failure = result.failure, result.verdict.reply == .localError { self.recordFailure(failure, of: result, request: request) }
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

    /// The transaction held for `key`, if there is one (or one to adopt), with `inFlight`
    /// counted for the caller.
    private func heldTransaction(for key: TransactionKey) -> HeldTransaction? {
        let table = self.table
        if let existing = table[key] {
            existing.inFlight += 1
            return existing
        }
        guard key.instance != nil else { return nil }
        let connection = key.connection
        // A new instance on the same SMTP connection is its next message: the previous
        // one is over even if Postfix never sent END-OF-MESSAGE for it.
        if let previous = self.instanceOfConnection[connection], previous != key {
            self.finish(previous)
        }
        self.instanceOfConnection[connection] = key
        // The first request with an instance adopts what was evaluated for the connection before it.
        guard let adopted = table[TransactionKey(connection: connection, instance: nil)] else { return nil }
        table.rekey(adopted, to: key)
        adopted.inFlight += 1
        return adopted
    }

    /// A new transaction for `key`, begun in the engine with `session` (the request's, as
    /// `sessionInfo` made it) in the same step: nothing awaits in between, so no second
    /// request can find it half made. Returned with `inFlight` counted for the caller.
    private func makeTransaction(for key: TransactionKey, session: SessionInfo, request: PolicyRequest,
                                 now: Double) -> HeldTransaction {
        let engine = self.engine
        let ruleTransaction = engine.assumeIsolatedByConstruction { $0.beginTransaction(session) }
        let transaction = HeldTransaction(key: key, now: now, cost: TransactionCost.of(session, recipients: []),
                                          begun: (engine, ruleTransaction))
        // The addresses just parsed serve the transaction's next requests, which repeat them.
        if let sender = session.mailFrom { transaction.remember(sender: request.value(.sender) ?? "", as: sender) }
        if let recipient = session.rcpts.first, let text = request[.recipient] { transaction.remember(recipient: text, as: recipient) }
        transaction.inFlight = 1
        self.table.insert(transaction)
        self.routes.retain(key.connection)
        self.end(self.evictOverflow(protecting: transaction))
        self.recordGauges()
        return transaction
    }

    private func finish(_ key: TransactionKey) {
        guard let transaction = self.table[key] else { return }
        self.remove(transaction)
        self.recordGauges()
        self.end([transaction])
    }

    /// Ends whatever the connection holds: its instance-less transaction and its current instance.
    private func finishConnection(_ connection: ConnectionKey) {
        if let current = self.instanceOfConnection[connection] { self.finish(current) }
        self.finish(TransactionKey(connection: connection, instance: nil))
    }

    private func remove(_ transaction: HeldTransaction) {
        guard self.table.remove(transaction.key) != nil else { return }
        self.routes.release(transaction.key.connection)
        if self.instanceOfConnection[transaction.key.connection] == transaction.key {
            self.instanceOfConnection[transaction.key.connection] = nil
        }
    }

    /// Frees the removed transactions' `ctx` in the engines they began on (each on this
    /// shard's executor).
    private func end(_ transactions: [HeldTransaction]) {
        for transaction in transactions {
            if let first = transaction.pendingHeaders.first {
                self.undeliveredHeaders.increment(by: Int64(transaction.pendingHeaders.count))
                self.warn("headers", """
                    headers the rules added did not reach the message: Postfix takes one per answer, before end of data \
                    (name the service in smtpd_data_restrictions too)
                    """, metadata: [
                    "headers": "\(transaction.pendingHeaders.count)", "first": "\(first.name)",
                ])
            }
            let begun = transaction.begun
            begun.engine.assumeIsolatedByConstruction { $0.endTransaction(begun.transaction) }
        }
    }

    /// The part of `ctx` that picks a request's stages and names their subjects: the HELO
    /// name, the authentication, the sender and the request's recipient.
    static func stageSubjects(from request: PolicyRequest, addresses: HeldTransaction? = nil) -> SessionInfo {
        var info = SessionInfo(clientIP: "")
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
        return info
    }

    /// `ctx` from the request's attributes.
    static func sessionInfo(from request: PolicyRequest, addresses: HeldTransaction? = nil) -> SessionInfo {
        var info = Self.stageSubjects(from: request, addresses: addresses)
        info.clientIP = request[.clientAddress] ?? "unknown"
        // A port out of range (a peer that is not Postfix) is left out, as a missing one is.
        info.clientPort = request[.clientPort].flatMap(Int.init).flatMap { (0...65535).contains($0) ? $0 : nil }
        if let name = request[.clientName], name != "unknown" { info.clientName = name }
        info.serverIP = request[.serverAddress]
        info.serverPort = request[.serverPort].flatMap(Int.init).flatMap { (0...65535).contains($0) ? $0 : nil }
        // The authserv-id of Authentication-Results and the receiver of Received-SPF: Postfix
        // does not send its own name, so the name of the host vrules runs on stands in.
        info.serverName = request[.serverName] ?? Self.hostName
        if request[.encryptionProtocol] != nil || request[.encryptionCipher] != nil {
            info.tls = SessionInfo.TLSInfo(version: request[.encryptionProtocol], cipher: request[.encryptionCipher],
                                           sni: request[.tlsSNI] ?? request[.serverName])
        }
        return info
    }
}
