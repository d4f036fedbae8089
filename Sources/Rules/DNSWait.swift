import DNS
import Dispatch
import Foundation

/// Awaits the answers to a DNS call's questions, or the stage deadline, whichever comes
/// first. Nothing outlives the wait: the deadline is a dispatch timer cancelled (and freed)
/// as soon as the answers arrive. (A `Task.sleep` for the deadline, cancelled, kept its
/// timer queued until the deadline passed: tens of thousands per minute under load.)
enum DNSWait {
    private static let timerQueue = DispatchQueue(label: "vrules.dns-wait.deadlines")

    /// The answers, or nil when `seconds` pass first. The lookup is then cancelled; the
    /// resolver bounds it in any case.
    static func answers(to questions: [DNSQuestion], from resolver: any DNSResolving,
                        within seconds: Double) async -> [DNSQueryResult]? {
        guard seconds > 0 else { return nil }
        let race = AnswerRace()
        return await withCheckedContinuation { (continuation: CheckedContinuation<[DNSQueryResult]?, Never>) in
            race.install(continuation)
            let lookup = Task { race.finish(await resolver.resolveAll(questions)) }
            let timer = DispatchSource.makeTimerSource(queue: Self.timerQueue)
            timer.setEventHandler {
                if race.finish(nil) { lookup.cancel() }
            }
            timer.schedule(deadline: .now() + seconds)
            // Activated before it can be cancelled: releasing an inactive source traps.
            timer.resume()
            race.attach(timer)
        }
    }
}

/// Resumes a continuation once, with whichever of the lookup or the deadline comes first,
/// and cancels the deadline's timer either way.
private final class AnswerRace: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<[DNSQueryResult]?, Never>?
    private var timer: (any DispatchSourceTimer)?
    private var value: [DNSQueryResult]??

    func install(_ continuation: CheckedContinuation<[DNSQueryResult]?, Never>) {
        self.lock.lock()
        self.continuation = continuation
        self.lock.unlock()
    }

    /// Keeps the deadline's timer to cancel it, or cancels it now if the race is over.
    func attach(_ timer: any DispatchSourceTimer) {
        self.lock.lock()
        if self.value != nil {
            self.lock.unlock()
            timer.cancel()
            return
        }
        self.timer = timer
        self.lock.unlock()
    }

    /// Returns whether this call decided the race.
    @discardableResult
    func finish(_ value: [DNSQueryResult]?) -> Bool {
        self.lock.lock()
        guard self.value == nil else {
            self.lock.unlock()
            return false
        }
        self.value = .some(value)
        let continuation = self.continuation
        let timer = self.timer
        self.continuation = nil
        self.timer = nil
        self.lock.unlock()
        timer?.cancel()
        continuation?.resume(returning: value)
        return true
    }
}
