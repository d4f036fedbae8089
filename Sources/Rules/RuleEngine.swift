import DNS
import Foundation
import Lua

/// A transaction's state on the engine side: its `ctx` and `ctx.vars` in the Lua state.
public final class RuleTransaction: @unchecked Sendable {
    public let id: Int64
    fileprivate var session: SessionInfo
    fileprivate var lastPushed: SessionInfo?
    let dataReference: Int32
    fileprivate let proxyReference: Int32
    fileprivate var ended = false

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
public actor RuleEngine {
    let host: RuleHost
    private let resolvers: any DNSResolverSelecting
    public nonisolated let scriptPath: String
    private var nextTransactionID: Int64 = 1

    /// Loads the script at `scriptPath`; `require` reads modules from its directory.
    public init(scriptPath: String, resolvers: any DNSResolverSelecting, limits: RuleLimits = RuleLimits(),
                tracing: Bool = true, logHandler: (@Sendable (RuleLogRecord) -> Void)? = nil) throws(RuleLoadError) {
        let directory = (scriptPath as NSString).deletingLastPathComponent
        self.host = RuleHost(limits: limits, rulesDirectory: directory.isEmpty ? "." : directory)
        self.host.logHandler = logHandler
        self.host.tracing = tracing
        self.resolvers = resolvers
        self.scriptPath = scriptPath
        try self.host.load(path: scriptPath)
    }

    /// Loads a script given as text (tests, embedding); `path` names it in messages.
    public init(source: String, path: String, rulesDirectory: String = ".", resolvers: any DNSResolverSelecting,
                limits: RuleLimits = RuleLimits(), tracing: Bool = true,
                logHandler: (@Sendable (RuleLogRecord) -> Void)? = nil) throws(RuleLoadError) {
        self.host = RuleHost(limits: limits, rulesDirectory: rulesDirectory)
        self.host.logHandler = logHandler
        self.host.tracing = tracing
        self.resolvers = resolvers
        self.scriptPath = path
        try self.host.load(source: source, path: path)
    }

    /// The stages this script has rules for.
    public var stages: [Stage] { Stage.allCases.filter { !(self.host.entries[$0] ?? []).isEmpty } }

    public func ruleNames(for stage: Stage) -> [String] { (self.host.entries[stage] ?? []).map(\.name) }

    /// Every global the sandbox binds, with the member names of tables.
    public func boundGlobals() -> [String: Set<String>] { self.host.boundGlobals() }

    public var memoryUsed: Int { self.host.lua.memoryUsed }

    /// Sees every DNS question a rule asks and its outcome (`ok`, `nxdomain`, `timeout`...),
    /// whether or not traces are recorded; for metrics.
    public func observeDNSQueries(_ observer: (@Sendable (DNSQuestion, String) -> Void)?) {
        self.host.queryObserver = observer
    }

    /// Runs `body` on the engine's actor: many evaluations without a hop between each.
    public func withIsolation<T: Sendable>(_ body: (isolated RuleEngine) async throws -> T) async rethrows -> T {
        try await body(self)
    }

    public func beginTransaction(_ session: SessionInfo) -> RuleTransaction {
        let id = self.nextTransactionID
        self.nextTransactionID += 1
        let (data, proxy) = self.host.makeContext(for: session)
        return RuleTransaction(id: id, session: session, dataReference: data, proxyReference: proxy)
    }

    /// Frees the transaction's `ctx` and `ctx.vars`.
    public func endTransaction(_ transaction: RuleTransaction) {
        guard !transaction.ended else { return }
        transaction.ended = true
        self.host.releaseContext(data: transaction.dataReference, proxy: transaction.proxyReference)
    }

    /// Runs the rules of `stage` for the transaction, with what the MTA now knows of it.
    public func evaluate(_ stage: Stage, in transaction: RuleTransaction, session: SessionInfo? = nil) async -> StageResult {
        if let session { transaction.session = session }
        var result = StageResult(stage: stage, verdict: Verdict(kind: .next), decidedBy: nil, failure: nil, trace: [])
        guard !transaction.ended else {
            result.verdict = Verdict(kind: .defer_, reply: .localError)
            result.failure = "transaction already ended"
            return result
        }
        guard self.host.entries[stage]?.isEmpty == false else { return result }

        let host = self.host
        host.updateContext(dataReference: transaction.dataReference, stage: stage, session: transaction.session,
                           previous: transaction.lastPushed)
        transaction.lastPushed = transaction.session
        let resolver = self.resolvers.resolver(forDomain: transaction.session.virtualDomain)
        let evaluation = host.beginEvaluation(stage: stage, resolver: resolver)
        let thread = host.acquireThread()
        evaluation.budget.attach(to: thread.thread)
        evaluation.cursor = thread.cursor
        var reusable = true
        defer {
            host.recycleThread(thread, reusable: reusable)
            host.endEvaluation(evaluation)
        }

        let arguments = host.pushStageCall(stage, contextProxy: transaction.proxyReference, thread: thread)
        var (status, count) = host.lua.resume(thread.thread, arguments: arguments)
        while status == .yield {
            guard let call = evaluation.pending else {
                status = .runtimeError
                host.lua.pushString("coroutine yielded outside a DNS call", thread.thread)
                break
            }
            evaluation.pending = nil
            while let questions = call.neededQuestions {
                let remaining = evaluation.budget.deadline - LuaBudget.now()
                guard let answers = await Self.answers(to: questions, from: resolver, within: remaining) else {
                    reusable = false
                    result.trace = evaluation.trace.events
                    result.verdict = Verdict(kind: .defer_, reply: .directoryFailure)
                    result.decidedBy = host.currentEntry(stage, cursor: thread.cursor)?.name
                    result.failure = "stage deadline exceeded while waiting for \(call.function)(\(call.argument))"
                    return result
                }
                call.feed(answers, trace: &evaluation.trace)
                call.advanceImmediately(using: resolver, trace: &evaluation.trace)
            }
            let resumeArguments = host.pushCompletion(call, evaluation: evaluation, thread: thread.thread)
            (status, count) = host.lua.resume(thread.thread, arguments: resumeArguments)
        }

        if status == .ok {
            let (entry, verdict) = host.stageOutcome(stage, thread: thread.thread, results: count)
            result.verdict = verdict
            result.decidedBy = entry?.name
        } else {
            reusable = false
            let entry = host.currentEntry(stage, cursor: thread.cursor)
            let (message, isDNSError) = host.describeError(thread: thread.thread)
            let label = entry.map { "\($0.kind) '\($0.name)'" } ?? "stage \(stage.rawValue)"
            result.decidedBy = entry?.name
            if let limit = evaluation.budget.exceeded {
                result.verdict = Verdict(kind: .defer_, reply: .localError)
                result.failure = "\(label): \(limit.rawValue)"
            } else if status == .memoryError || host.lua.memoryExceeded {
                result.verdict = Verdict(kind: .defer_, reply: .localError)
                result.failure = "\(label): \(LuaLimit.memory.rawValue)"
            } else if isDNSError {
                result.verdict = Verdict(kind: .defer_, reply: .directoryFailure)
                result.failure = "\(label): \(message)"
            } else {
                result.verdict = Verdict(kind: .defer_, reply: .localError)
                result.failure = "\(label): \(entry?.locate(message) ?? message)"
            }
            if let entry { evaluation.trace.record(.rule(name: entry.name, kind: entry.kind, decision: "error")) }
        }
        result.trace = evaluation.trace.events
        return result
    }

    /// Awaits the answers, or returns nil when `seconds` pass first. The lookup itself is
    /// not cancelled (the resolver bounds it); its late answer is simply dropped.
    private static func answers(to questions: [DNSQuestion], from resolver: any DNSResolving,
                                within seconds: Double) async -> [DNSQueryResult]? {
        guard seconds > 0 else { return nil }
        let race = AnswerRace()
        return await withCheckedContinuation { (continuation: CheckedContinuation<[DNSQueryResult]?, Never>) in
            race.install(continuation)
            let lookup = Task { race.finish(await resolver.resolveAll(questions)) }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                if race.finish(nil) { lookup.cancel() }
            }
            race.onFinish { timer.cancel() }
        }
    }
}

/// Resumes a continuation once, with whichever of the lookup or the deadline comes first.
private final class AnswerRace: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<[DNSQueryResult]?, Never>?
    private var cleanup: (() -> Void)?
    private var done = false

    func install(_ continuation: CheckedContinuation<[DNSQueryResult]?, Never>) {
        self.lock.lock()
        self.continuation = continuation
        self.lock.unlock()
    }

    func onFinish(_ body: @escaping () -> Void) {
        self.lock.lock()
        if self.done {
            self.lock.unlock()
            body()
            return
        }
        self.cleanup = body
        self.lock.unlock()
    }

    @discardableResult
    func finish(_ value: [DNSQueryResult]?) -> Bool {
        self.lock.lock()
        guard !self.done, let continuation = self.continuation else {
            self.lock.unlock()
            return false
        }
        self.done = true
        self.continuation = nil
        let cleanup = self.cleanup
        self.cleanup = nil
        self.lock.unlock()
        continuation.resume(returning: value)
        cleanup?()
        return true
    }
}

extension RuleEntry {
    var kind: String { self.isAction ? "action" : "rule" }

    /// Prefixes a message that has no `path:line:` (an error raised from a tail call,
    /// where Lua keeps no caller position) with the line that defined the rule.
    func locate(_ message: String) -> String {
        // A verdict constructor tail-called from the rule reports the prelude's own line.
        if let prelude = message.range(of: #"^vrules:\d+: "#, options: .regularExpression) {
            return self.position + message[prelude.upperBound...]
        }
        if message.range(of: #"^[^:\s]+:\d+: "#, options: .regularExpression) != nil { return message }
        return self.position + message
    }
}
