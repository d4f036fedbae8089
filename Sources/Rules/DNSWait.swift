import DNS
import Dispatch
import Foundation

/// Awaits the answers to a DNS call's questions, or the stage deadline, whichever comes
/// first. Nothing outlives the wait: its deadline is an entry in `DNSWaitDeadlines`,
/// removed as soon as the answers arrive. (A `Task.sleep` for the deadline, cancelled, kept
/// its timer queued until the deadline passed: tens of thousands per minute under load; a
/// dispatch timer per wait, made and cancelled, cost a tenth of a policy request's CPU.)
enum DNSWait {
    /// The answers, or nil when `seconds` pass first. The lookups are then cancelled; the
    /// resolver bounds them in any case.
    ///
    /// Each question is started with `DNSResolving.startResolving`, whose answers resume the
    /// waiting stage directly: no task of the wait's own (the rule must go on at its deadline
    /// even when a lookup still waits for another one asking the same question, so the
    /// lookups are not child tasks of the stage).
    static func answers(to questions: [DNSQuestion], from resolver: any DNSResolving,
                        within seconds: Double, on executor: (any TaskExecutor)? = nil) async -> [DNSQueryResult]? {
        guard seconds > 0 else { return nil }
        let race = AnswerRace(questions: questions.count)
        return await withCheckedContinuation { (continuation: CheckedContinuation<[DNSQueryResult]?, Never>) in
            race.install(continuation)
            var lookups: [DNSLookupHandle] = []
            lookups.reserveCapacity(questions.count)
            for (index, question) in questions.enumerated() {
                lookups.append(resolver.startResolving(question, preferring: executor) { result in
                    race.deliver(result, at: index)
                })
            }
            race.attach(lookups)
            DNSWaitDeadlines.shared.watch(race, until: DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9))
        }
    }
}

/// The deadlines of every DNS wait in progress, checked by one repeating timer: a wait costs
/// an insertion and a removal under a lock. A deadline is noticed at most `tick` late.
///
/// The timer is made by the first wait and stops at the first tick that finds none, not when
/// the last wait is forgotten: under load the set empties between almost every pair of
/// waits, and a timer made and cancelled each time woke libdispatch's timer thread (a
/// `timerfd_settime`) about once per policy transaction.
final class DNSWaitDeadlines: @unchecked Sendable {
    // @unchecked: `waiting` and `timer` are read and written under `lock`.
    static let shared = DNSWaitDeadlines(tick: .milliseconds(10))

    private let tick: DispatchTimeInterval

    private let lock = NSLock()
    private let queue = DispatchQueue(label: "vrules.dns-wait.deadlines")
    private var waiting: [ObjectIdentifier: (deadline: UInt64, race: AnswerRace)] = [:]
    private var timer: (any DispatchSourceTimer)?

    init(tick: DispatchTimeInterval) {
        self.tick = tick
    }

    deinit {
        // The tick handler holds this object unowned: no tick may outlive it.
        self.timer?.cancel()
    }

    var count: Int {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.waiting.count
    }

    func watch(_ race: AnswerRace, until deadline: UInt64) {
        self.lock.lock()
        defer { self.lock.unlock() }
        // The answers may have come already: then there is nothing to watch.
        guard !race.isFinished else { return }
        self.waiting[ObjectIdentifier(race)] = (deadline, race)
        if self.timer == nil {
            let timer = DispatchSource.makeTimerSource(queue: self.queue)
            timer.setEventHandler { [unowned self] in self.checkDeadlines() }
            timer.schedule(deadline: .now() + self.tick, repeating: self.tick)
            timer.resume()
            self.timer = timer
        }
    }

    /// Whether the timer runs: from the first wait to the first tick that finds none.
    var isTicking: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.timer != nil
    }

    func forget(_ race: AnswerRace) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.waiting[ObjectIdentifier(race)] = nil
    }

    /// One tick: ends the waits whose deadline passed, and stops the timer if none is left.
    func checkDeadlines() {
        let now = DispatchTime.now().uptimeNanoseconds
        self.lock.lock()
        let expired = self.waiting.values.filter { $0.deadline <= now }.map(\.race)
        if self.waiting.isEmpty, let timer = self.timer {
            timer.cancel()
            self.timer = nil
        }
        self.lock.unlock()
        for race in expired { race.expire() }
    }
}

/// Resumes a continuation once, with whichever comes first: every question's answer, or the
/// deadline; the loser is cancelled (the lookups) or forgotten (the deadline).
final class AnswerRace: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<[DNSQueryResult]?, Never>?
    private var lookups: [DNSLookupHandle] = []
    private var results: [DNSQueryResult?]
    private var missing: Int
    private var value: [DNSQueryResult]??

    init(questions: Int) {
        self.results = Array(repeating: nil, count: questions)
        self.missing = questions
    }

    var isFinished: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.value != nil
    }

    func install(_ continuation: CheckedContinuation<[DNSQueryResult]?, Never>) {
        self.lock.lock()
        self.continuation = continuation
        self.lock.unlock()
    }

    func attach(_ lookups: [DNSLookupHandle]) {
        self.lock.lock()
        let over = self.value != nil
        if !over { self.lookups = lookups }
        self.lock.unlock()
        // Over already (every answer came before this): nothing they do is wanted.
        if over { for lookup in lookups { lookup.cancel() } }
    }

    /// The answer to question `index`; the last one missing ends the race.
    func deliver(_ result: DNSQueryResult, at index: Int) {
        self.lock.lock()
        guard self.value == nil, self.results[index] == nil else {
            self.lock.unlock()
            return
        }
        self.results[index] = result
        self.missing -= 1
        let complete = self.missing == 0 ? self.results.map { $0! } : nil
        self.lock.unlock()
        if let complete { self.finish(complete) }
    }

    /// The deadline passed first: no answers, and the lookups are cancelled.
    func expire() {
        self.finish(nil)
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
        let lookups = value == nil ? self.lookups : []
        self.continuation = nil
        self.lookups = []
        self.lock.unlock()
        DNSWaitDeadlines.shared.forget(self)
        for lookup in lookups { lookup.cancel() }
        continuation?.resume(returning: value)
        return true
    }
}
