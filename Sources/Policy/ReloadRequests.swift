import NIOConcurrencyHelpers

/// The reloads asked of `ReloadService`: by SIGHUP, by a shard whose Lua state is full of the
/// rules' own data, and by `vrules reload` on the control socket, which waits for the outcome.
/// One reload runs at a time; what is asked meanwhile folds into one more reload, and everyone
/// waiting on that one is told its outcome. An asker is never told the outcome of a reload
/// that began before it asked: that one may have read the files before they were changed.
public final class ReloadRequests: Sendable {
    /// What a waiting asker is told.
    public enum Outcome: Sendable, Equatable {
        /// The new rules are in use; what the operator should know of the files (logged too).
        case loaded(warnings: [String])
        /// The new rules or configuration did not load; the running ones stay. The errors.
        case failed(String)
        /// The server stopped before a reload could begin.
        case stopping
    }

    private struct State {
        var waiting: [CheckedContinuation<Outcome, Never>] = []
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    let asked: AsyncStream<ReloadService.Reason>
    private let continuation: AsyncStream<ReloadService.Reason>.Continuation

    public init() {
        (self.asked, self.continuation) = AsyncStream.makeStream(of: ReloadService.Reason.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a reload without waiting for it.
    public func ask(_ reason: ReloadService.Reason) {
        self.continuation.yield(reason)
    }

    /// Asks for a reload and returns the outcome of the first one to begin after this call.
    public func reload(_ reason: ReloadService.Reason) async -> Outcome {
        await withCheckedContinuation { continuation in
            let stopped = self.state.withLockedValue { state in
                if !state.stopped { state.waiting.append(continuation) }
                return state.stopped
            }
            if stopped {
                continuation.resume(returning: .stopping)
            } else {
                self.continuation.yield(reason)
            }
        }
    }

    /// How many askers wait for a reload to begin (tests).
    var waitingCount: Int { self.state.withLockedValue { $0.waiting.count } }

    /// For the reload beginning now: the askers its outcome answers.
    func beginReload() -> [CheckedContinuation<Outcome, Never>] {
        self.takeWaiting(stopping: false)
    }

    /// No reload begins any more: whoever waits, and asks from now on, is told `.stopping`.
    func stop() {
        for continuation in self.takeWaiting(stopping: true) { continuation.resume(returning: .stopping) }
        self.continuation.finish()
    }

    private func takeWaiting(stopping: Bool) -> [CheckedContinuation<Outcome, Never>] {
        self.state.withLockedValue { state in
            if stopping { state.stopped = true }
            defer { state.waiting.removeAll() }
            return state.waiting
        }
    }
}
