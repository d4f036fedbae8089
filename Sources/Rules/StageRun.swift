import DNS
import Lua

/// One stage evaluation, from its first resume to its result: the coroutine it runs on,
/// its budget, the DNS call it waits for, and its trace.
///
/// The C side finds the run of a host call through the budget in the coroutine's extra
/// space (`LuaBudget.owner`), so nothing is looked up by ID. A run is driven on its engine's
/// actor (`run(on:)`), which is what makes touching the Lua state from it safe.
final class StageRun {
    let stage: Stage
    let resolver: any DNSResolving
    let budget: LuaBudget
    private(set) var trace: Trace
    /// A `dns.*` call that yielded and waits for answers.
    var pending: (any PendingDNSCall)?
    /// Headers the stage's rules added, in order, each once.
    private(set) var headers: [MessageHeader] = []
    /// Lines the stage's rules logged, those dropped past `[limits] log_lines` included.
    var loggedLines = 0
    /// DNS calls the stage's rules made, those refused past `[limits] dns_calls` included.
    var dnsCalls = 0
    private unowned let host: RuleHost
    private let thread: StageThread

    init(host: RuleHost, stage: Stage, resolver: any DNSResolving, thread: StageThread) {
        self.host = host
        self.stage = stage
        self.resolver = resolver
        self.thread = thread
        self.trace = Trace(enabled: host.tracing, queryObserver: host.queryObserver)
        self.budget = LuaBudget(instructions: host.limits.instructionsPerStage, seconds: host.limits.stageTimeout,
                                runSeconds: host.limits.runSecondsPerStage)
        self.budget.pointer.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
    }

    /// The run a host call on `thread` belongs to, while it runs.
    static func current(on thread: LuaThread) -> StageRun? {
        LuaBudget.owner(of: thread).map { Unmanaged<StageRun>.fromOpaque($0).takeUnretainedValue() }
    }

    /// The entry running now (the one that failed, or that logs).
    var currentEntry: RuleEntry? { self.host.currentEntry(self.stage, cursor: self.thread.cursor) }

    func record(_ event: @autoclosure () -> TraceEvent) { self.trace.record(event()) }

    func withTrace<T>(_ body: (inout Trace) -> T) -> T { body(&self.trace) }

    func add(_ header: MessageHeader) {
        if !self.headers.contains(header) { self.headers.append(header) }
    }

    /// Runs the stage's rules for the context `contextProxy` until it has its verdict, or
    /// until a rule waits for DNS answers that are not at hand: nil then, and `finish(on:)`
    /// awaits them. Most stages never wait (warm caches, zone data), so the common path has
    /// no suspension point.
    func start(contextProxy: Int32) -> StageResult? {
        self.budget.attach(to: self.thread.thread)
        let arguments = self.host.pushStageCall(self.stage, contextProxy: contextProxy, thread: self.thread)
        let (status, count) = self.host.lua.resume(self.thread.thread, arguments: arguments)
        if status == .yield && self.pending != nil { return nil }
        return self.end(status: status, results: count)
    }

    /// Awaits the DNS answers the stage waits for, resumes it with them, and so on until it
    /// has its verdict (after `start` returned nil).
    func finish(on engine: isolated RuleEngine) async -> StageResult {
        let lua = self.host.lua
        while let call = self.pending {
            self.pending = nil
            while let questions = call.neededQuestions {
                let remaining = self.budget.deadline - LuaBudget.now()
                guard let answers = await DNSWait.answers(to: questions, from: self.resolver, within: remaining,
                                                            on: engine.lookupExecutor) else {
                    let result = self.result(.defer_, reply: .directoryFailure, decidedBy: self.currentEntry?.name,
                                             failure: "stage deadline exceeded while waiting for \(call.function)(\(call.argument))")
                    self.close(reusable: false)
                    return result
                }
                call.feed(answers, trace: &self.trace)
                call.advanceImmediately(using: self.resolver, trace: &self.trace)
            }
            let resumeArguments = self.host.pushCompletion(call, thread: self.thread.thread, trace: &self.trace)
            let (status, count) = lua.resume(self.thread.thread, arguments: resumeArguments)
            if status == .yield && self.pending != nil { continue }
            return self.end(status: status, results: count)
        }
        return self.end(status: .runtimeError, results: 0)
    }

    /// The stage's result once its coroutine returned, died or yielded outside a DNS call.
    private func end(status: LuaStatus, results count: Int32) -> StageResult {
        if status == .ok {
            let (entry, verdict) = self.host.stageOutcome(self.stage, thread: self.thread.thread, results: count)
            var result = StageResult(stage: self.stage, verdict: verdict, decidedBy: entry?.name, failure: nil,
                                     trace: self.trace.events)
            result.headers = self.headers
            self.close(reusable: true)
            return result
        }
        var status = status
        if status == .yield {
            status = .runtimeError
            self.host.lua.pushString("coroutine yielded outside a DNS call", self.thread.thread)
        }
        let result = self.failure(status: status)
        self.close(reusable: false)
        return result
    }

    /// Detaches the budget and returns the coroutine to the pool (a failed one is dropped).
    private func close(reusable: Bool) {
        LuaBudget.detach(from: self.thread.thread)
        self.host.threads.recycle(self.thread, reusable: reusable, in: self.host.lua)
        self.host.afterRun(exceeded: self.budget.exceeded)
    }

    /// The result of a coroutine that died: a limit, an uncaught DNS error, or a script error.
    private func failure(status: LuaStatus) -> StageResult {
        let entry = self.currentEntry
        let (message, isDNSError) = self.host.describeError(thread: self.thread.thread)
        let label = entry.map { "\($0.kind) '\($0.name)'" } ?? "stage \(self.stage.rawValue)"
        if let entry { self.trace.record(.rule(name: entry.name, kind: entry.kind, decision: "error")) }
        if let limit = self.budget.exceeded {
            return self.result(.defer_, reply: .localError, decidedBy: entry?.name, failure: "\(label): \(limit.rawValue)")
        }
        if status == .memoryError || self.host.lua.memoryExceeded {
            return self.result(.defer_, reply: .localError, decidedBy: entry?.name,
                               failure: "\(label): \(LuaLimit.memory.rawValue)")
        }
        if isDNSError {
            return self.result(.defer_, reply: .directoryFailure, decidedBy: entry?.name, failure: "\(label): \(message)")
        }
        return self.result(.defer_, reply: .localError, decidedBy: entry?.name,
                           failure: "\(label): \(entry?.locate(message) ?? message)")
    }

    private func result(_ kind: VerdictKind, reply: SMTPReply, decidedBy: String?, failure: String) -> StageResult {
        StageResult(stage: self.stage, verdict: Verdict(kind: kind, reply: reply), decidedBy: decidedBy,
                    failure: failure, trace: self.trace.events)
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
