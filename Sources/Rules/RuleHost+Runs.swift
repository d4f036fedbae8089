import DNS
import Foundation
import Lua

/// What a stage run needs of the host: its coroutine's call, its outcome, its errors.
extension RuleHost {
    /// Stack slots a DNS call's completion may use: (ok, result, outcome) and the tables and
    /// strings being built for them.
    static let completionSlots: Int32 = 8

    // MARK: runs

    /// A run of `stage` on a coroutine of its own (pooled).
    func startRun(_ stage: Stage, resolver: any DNSResolving) -> StageRun {
        StageRun(host: self, stage: stage, resolver: resolver, thread: self.threads.acquire(from: self.lua))
    }

    /// After a run: the garbage of one that ran out of memory is collected at once, so the
    /// next transaction starts with the memory back.
    func afterRun(exceeded: LuaLimit?) {
        if exceeded == .memory || exceeded == .instructions || self.lua.memoryExceeded {
            self.lua.collectGarbageAfterFailure()
        }
    }

    /// Pushes `run_stage(list, ctx, tracing, cursor)` onto the thread; returns the argument count.
    func pushStageCall(_ stage: Stage, contextProxy: Int32, thread: StageThread) -> Int32 {
        self.lua.pushReference(self.runStageReference, thread.thread)
        self.lua.pushReference(self.stageListReferences[stage] ?? 0, thread.thread)
        self.lua.pushReference(contextProxy, thread.thread)
        self.lua.pushBoolean(self.tracing, thread.thread)
        self.lua.pushReference(thread.cursor, thread.thread)
        return 4
    }

    /// What `run_stage` returned: the deciding entry (nil when none did) and the verdict.
    func stageOutcome(_ stage: Stage, thread: LuaThreadHandle, results: Int32) -> (RuleEntry?, Verdict) {
        let lua = self.lua
        let base = lua.top(thread) - results
        defer { lua.setTop(0, thread) }
        guard results >= 2, let index = lua.integer(at: base + 1, thread), index > 0,
              let entries = self.entries[stage], index <= entries.count else {
            return (nil, Verdict(kind: .next))
        }
        let kind = VerdictKind(rawValue: lua.string(at: base + 2, thread) ?? "next") ?? .next
        var reply: SMTPReply?
        if results >= 5, let code = lua.integer(at: base + 3, thread), let enhanced = lua.string(at: base + 4, thread) {
            reply = SMTPReply(code: code, enhanced: enhanced, text: lua.string(at: base + 5, thread) ?? "")
        }
        return (entries[index - 1], Verdict(kind: kind, reply: reply))
    }

    /// The entry running in an evaluation (the one that failed, or that logs). Each stage
    /// thread has its own cursor, so concurrent transactions cannot overwrite each other's.
    func currentEntry(_ stage: Stage, cursor: Int32) -> RuleEntry? {
        let lua = self.lua
        lua.pushReference(cursor)
        lua.getIndex(1, table: -1)
        let index = lua.integer(at: -1)
        lua.pop(2)
        guard let index, let entries = self.entries[stage], index >= 1, index <= entries.count else { return nil }
        return entries[index - 1]
    }

    /// The error a rule's coroutine died with: a DNS error (uncaught transient failure) or a message.
    func describeError(thread: LuaThreadHandle) -> (message: String, isDNSError: Bool) {
        let lua = self.lua
        var isDNSError = false
        if lua.getMetatable(at: -1, thread) {
            lua.pushReference(self.dnsErrorMetatableReference, thread)
            isDNSError = lua.rawEqual(-1, -2, thread)
            lua.pop(2, thread)
        }
        lua.moveTop(from: thread, to: lua.L)
        let message = lua.errorMessage(at: -1)
        lua.pop()
        return (message, isDNSError)
    }

    func pushDNSError(_ error: DNSError, thread: LuaThreadHandle) {
        let lua = self.lua
        lua.newTable(fieldCount: 4, thread)
        lua.pushString(error.kind.rawValue, thread); lua.setField("kind", table: -2, thread)
        lua.pushString(error.name, thread); lua.setField("name", table: -2, thread)
        lua.pushString(error.type.description, thread); lua.setField("type", table: -2, thread)
        if let detail = error.detail { lua.pushString(detail, thread); lua.setField("detail", table: -2, thread) }
        lua.pushReference(self.dnsErrorMetatableReference, thread)
        lua.setMetatable(at: -2, thread)
    }

    /// After a yielded DNS call finished: pushes `(true, values...)` or `(false, error)`.
    /// The results of one call fit in a handful of slots (a table is built one field at a
    /// time); the trampoline reserved room before it yielded, checked again here. Pushing
    /// nothing makes the continuation raise "host call resumed without a result".
    func pushCompletion(_ call: any PendingDNSCall, thread: LuaThreadHandle, trace: inout Trace) -> Int32 {
        guard self.lua.reserve(Self.completionSlots, thread) else { return 0 }
        self.lua.pushBoolean(true, thread)
        switch call.pushResult(host: self, thread: thread, trace: &trace) {
        case .success(let count):
            return count + 1
        case .failure(let error):
            self.lua.pop(1, thread)
            self.lua.pushBoolean(false, thread)
            self.pushDNSError(error, thread: thread)
            return 2
        }
    }
}
