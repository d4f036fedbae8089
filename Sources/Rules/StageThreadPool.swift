import Lua

/// A coroutine that runs stage evaluations, and its cursor table (`{ index of the running
/// entry }`, written by `run_stage`, read by the host for log lines and failures).
struct StageThread {
    let thread: LuaThread
    let reference: Int32
    let cursor: Int32
}

/// Coroutines kept for reuse: creating one per stage costs more than the stage itself.
/// A coroutine that died (error, limit, deadline) is never reused.
struct StageThreadPool {
    static let capacity = 64
    private var idle: [StageThread] = []

    mutating func acquire(from lua: LuaState) -> StageThread {
        if let pooled = self.idle.popLast() { return pooled }
        let (thread, reference) = lua.newThread()
        lua.newTable(arrayCount: 1)
        return StageThread(thread: thread, reference: reference, cursor: lua.makeReference())
    }

    mutating func recycle(_ thread: StageThread, reusable: Bool, in lua: LuaState) {
        if reusable && self.idle.count < Self.capacity {
            lua.setTop(0, thread.thread)
            self.idle.append(thread)
        } else {
            lua.release(reference: thread.reference)
            lua.release(reference: thread.cursor)
        }
    }
}
