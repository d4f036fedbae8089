import DNS
import Foundation
import Lua

/// A transaction's state on the engine side: its `ctx` and `ctx.vars` in the Lua state.
public final class RuleTransaction: @unchecked Sendable {
    // @unchecked: the mutable fields are fileprivate and only RuleEngine's actor-isolated methods touch them.
    public let id: Int64
    /// What the MTA knows of the transaction now.
    var session: SessionInfo
    /// What the Lua `ctx` shows of it, so that a stage writes only the fields that changed.
    var shown = ShownContext()
    let dataReference: Int32
    fileprivate let proxyReference: Int32
    fileprivate var ended = false
    /// Every header the transaction's rules added, in order, each once.
    fileprivate var headers: [MessageHeader] = []

    fileprivate init(id: Int64, session: SessionInfo, dataReference: Int32, proxyReference: Int32) {
        self.id = id
        self.session = session
        self.dataReference = dataReference
        self.proxyReference = proxyReference
    }
}

/// The rule engine: one Lua state with a loaded rule script, serving many transactions
/// at once. Its methods run on the actor; a rule waiting for DNS suspends only its own
/// coroutine, and other transactions proceed in the meantime (actor reentrancy).
///
/// The actor runs on the executor it is given (the policy server gives each engine one of
/// its event loops, so that other actors on the same loop reach it without a thread
/// switch), or on a serial queue of its own.
public actor RuleEngine {
    let host: RuleHost
    /// Where the engine's work runs.
    public nonisolated let executor: any SerialExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { self.executor.asUnownedSerialExecutor() }
    /// Where the DNS lookups a rule waits for run (the engine's event loop in the policy
    /// server, so that an answer wakes one thread, not a pool thread and then the loop); nil:
    /// the global executor.
    nonisolated let lookupExecutor: (any TaskExecutor)?
    private let resolvers: any DNSResolverSelecting
    public nonisolated let scriptPath: String
    /// Where each entry's function is defined (in the script or a module), for `vrules check`.
    public nonisolated let ruleDefinitions: [RuleDefinition]
    private var nextTransactionID: Int64 = 1

    /// Loads the script at `scriptPath`; `require` reads modules from its directory.
    public init(scriptPath: String, resolvers: any DNSResolverSelecting, limits: RuleLimits = RuleLimits(),
                tracing: Bool = true, executor: (any SerialExecutor)? = nil, lookupExecutor: (any TaskExecutor)? = nil,
                logHandler: (@Sendable (RuleLogRecord) -> Void)? = nil) throws(RuleLoadError) {
        self.executor = executor ?? DispatchQueueExecutor(label: "vrules.engine")
        self.lookupExecutor = lookupExecutor
        let directory = (scriptPath as NSString).deletingLastPathComponent
        let host = RuleHost(limits: limits, rulesDirectory: directory.isEmpty ? "." : directory)
        host.logHandler = logHandler
        host.tracing = tracing
        self.resolvers = resolvers
        self.scriptPath = scriptPath
        Self.logHealthChanges(of: host.dnsblHealth, to: logHandler)
        try host.load(path: scriptPath)
        self.host = host
        self.ruleDefinitions = host.definitions
    }

    /// Loads a script given as text (tests, embedding); `path` names it in messages.
    public init(source: String, path: String, rulesDirectory: String = ".", resolvers: any DNSResolverSelecting,
                limits: RuleLimits = RuleLimits(), tracing: Bool = true, executor: (any SerialExecutor)? = nil,
                lookupExecutor: (any TaskExecutor)? = nil,
                logHandler: (@Sendable (RuleLogRecord) -> Void)? = nil) throws(RuleLoadError) {
        self.executor = executor ?? DispatchQueueExecutor(label: "vrules.engine")
        self.lookupExecutor = lookupExecutor
        let host = RuleHost(limits: limits, rulesDirectory: rulesDirectory)
        host.logHandler = logHandler
        host.tracing = tracing
        self.resolvers = resolvers
        self.scriptPath = path
        Self.logHealthChanges(of: host.dnsblHealth, to: logHandler)
        try host.load(source: source, path: path)
        self.host = host
        self.ruleDefinitions = host.definitions
    }

    /// What the answers of DNS blocklists mean: the operator's `[dnsbl."zone"]` policies over
    /// the built-in ones (unknown zones get RFC 5782's).
    public func useDNSBLPolicies(_ policies: DNSBLPolicies) {
        self.host.dnsblPolicies = policies
    }

    /// A blocklist zone that fails its test points is logged once, and again when it passes.
    private static func logHealthChanges(of health: DNSBLHealth, to logHandler: (@Sendable (RuleLogRecord) -> Void)?) {
        guard let logHandler else { return }
        health.observe { zone, failure in
            let message = failure.map { "dnsbl zone \(zone) failed its health check: \($0); it answers error until it passes" }
                ?? "dnsbl zone \(zone) passes its health check again"
            logHandler(RuleLogRecord(level: failure == nil ? "info" : "warn", message: message, rule: nil, stage: nil))
        }
    }

    /// Checks `zones` against their RFC 5782 test points now (the server does so for the
    /// zones of `[dnsbl]` at start and every `DNSBLHealth.interval`); zones used by rules
    /// are also checked alongside their first query.
    public func checkDNSBLHealth(zones: [String]) async {
        guard !zones.isEmpty else { return }
        let plan = DNSBLCheck(subject: .ip(.v4([127, 0, 0, 2])), zones: zones, policies: self.host.dnsblPolicies,
                              health: self.host.dnsblHealth, forceCheck: true)
        _ = await self.resolvers.resolver(forDomain: nil).run(plan)
    }

    /// Sees each change of a blocklist zone's health: the zone and why it fails (nil: it
    /// passes again); for metrics.
    public func observeDNSBLHealth(_ observer: @escaping @Sendable (String, String?) -> Void) {
        self.host.dnsblHealth.observe(observer)
    }

    /// Each blocklist zone checked so far and why it failed its test points (nil: healthy).
    public var dnsblHealth: [String: String?] { self.host.dnsblHealth.zones.mapValues(\.failure) }

    /// The stages this script has rules for.
    public var stages: [Stage] { Stage.allCases.filter { !(self.host.entries[$0] ?? []).isEmpty } }

    public func ruleNames(for stage: Stage) -> [String] { (self.host.entries[stage] ?? []).map(\.name) }

    /// Every global the sandbox binds, with the member names of tables.
    public func boundGlobals() -> [String: Set<String>] { self.host.boundGlobals() }

    public var memoryUsed: Int { self.host.lua.memoryUsed }
    /// The Lua state's memory cap (`[limits] memory`).
    public var memoryLimit: Int { self.host.lua.memoryLimit }

    /// Sees every DNS question a rule asks and its outcome (`ok`, `nxdomain`, `timeout`...),
    /// whether or not traces are recorded; for metrics.
    public func observeDNSQueries(_ observer: (@Sendable (DNSQuestion, String) -> Void)?) {
        self.host.queryObserver = observer
    }

    /// Sees the result of every SPF check a rule makes (`spf.check`, `spf.check_host`), and
    /// whether the resolver's kept result of an earlier check answered it; for metrics.
    public func observeSPFResults(_ observer: (@Sendable (SPFResult.Kind, _ reused: Bool) -> Void)?) {
        self.host.spfObserver = observer
    }

    /// Sees each log line dropped and each DNS call refused past a stage's bound
    /// (`[limits] log_lines`, `dns_calls`); for metrics.
    public func observeStageBounds(_ observer: (@Sendable (StageBound) -> Void)?) {
        self.host.boundObserver = observer
    }

    /// Runs `body` on the engine's actor: many evaluations without a hop between each.
    public func withIsolation<T: Sendable>(_ body: @Sendable (isolated RuleEngine) async throws -> T) async rethrows -> T {
        try await body(self)
    }

    public func beginTransaction(_ session: SessionInfo) -> RuleTransaction {
        let id = self.nextTransactionID
        self.nextTransactionID += 1
        let (data, proxy) = self.host.makeContext(for: session)
        return RuleTransaction(id: id, session: session, dataReference: data, proxyReference: proxy)
    }

    /// Every header the transaction's rules have added so far, in order, each once.
    public func headers(of transaction: RuleTransaction) -> [MessageHeader] { transaction.headers }

    /// Frees the transaction's `ctx` and `ctx.vars`.
    public func endTransaction(_ transaction: RuleTransaction) {
        guard !transaction.ended else { return }
        transaction.ended = true
        self.host.releaseContext(data: transaction.dataReference, proxy: transaction.proxyReference)
    }

    /// Runs the rules of `stage` for the transaction, with what the MTA now knows of it.
    public func evaluate(_ stage: Stage, in transaction: RuleTransaction, session: SessionInfo? = nil) async -> StageResult {
        switch self.evaluateNow(stage, in: transaction, session: session) {
        case .finished(let result): return result
        case .waiting(let pending): return await self.finish(pending)
        }
    }

    /// Runs the rules of `stage` for the transaction as far as they go without waiting:
    /// their result, or the evaluation waiting for DNS answers, which `finish` awaits. A
    /// caller on the engine's executor (the policy server's shards) decides most requests
    /// this way without a suspension, so without a task.
    package func evaluateNow(_ stage: Stage, in transaction: RuleTransaction, session: SessionInfo? = nil) -> StageEvaluation {
        if let session { transaction.session = session }
        guard !transaction.ended else {
            return .finished(StageResult(stage: stage, verdict: Verdict(kind: .defer_, reply: .localError), decidedBy: nil,
                                         failure: "transaction already ended", trace: []))
        }
        guard self.host.entries[stage]?.isEmpty == false else {
            return .finished(StageResult(stage: stage, verdict: Verdict(kind: .next), decidedBy: nil, failure: nil, trace: []))
        }
        self.host.updateContext(of: transaction, stage: stage)
        let run = self.host.startRun(stage, resolver: self.resolvers.resolver(forDomain: transaction.session.virtualDomain))
        guard let result = run.start(contextProxy: transaction.proxyReference) else {
            return .waiting(PendingStageEvaluation(run: run, transaction: transaction))
        }
        return .finished(Self.completed(result, in: transaction))
    }

    /// Awaits the DNS answers an evaluation waits for and runs its rules on to their result.
    package func finish(_ pending: PendingStageEvaluation) async -> StageResult {
        Self.completed(await pending.run.finish(on: self), in: pending.transaction)
    }

    /// A header is added once per message, however many stages or requests add it.
    private static func completed(_ result: StageResult, in transaction: RuleTransaction) -> StageResult {
        var result = result
        result.headers = result.headers.filter { !transaction.headers.contains($0) }
        transaction.headers += result.headers
        return result
    }
}

/// What `RuleEngine.evaluateNow` comes to.
package enum StageEvaluation: Sendable {
    case finished(StageResult)
    /// A rule waits for DNS answers that were not at hand: `RuleEngine.finish` awaits them.
    case waiting(PendingStageEvaluation)
}

/// A stage evaluation suspended in a DNS call.
package struct PendingStageEvaluation: @unchecked Sendable {
    // @unchecked: the run touches the Lua state; it is made by `evaluateNow` and finished by
    // `finish`, both on the engine's actor.
    fileprivate let run: StageRun
    fileprivate let transaction: RuleTransaction
}

/// One `rule(...)` or `action(...)` entry of a stage, as the script made it.
public struct RuleDefinition: Hashable, Sendable {
    /// The file (as the engine names it) and the line a function's `function` starts on.
    public struct FunctionPlace: Hashable, Sendable {
        public var path: String
        public var line: Int
    }

    public var stage: Stage
    public var name: String
    /// `action(...)` rather than `rule(...)`.
    public var isAction: Bool
    /// Where the script made the entry: its `rule(...)` call (`main.lua:12`).
    public var position: String
    /// Where the entry's function is defined; nil for a C function.
    public var function: FunctionPlace?
}
