import Dispatch

/// The executor of an engine that was given none (`vrules run`, `vrules test`, the
/// linter): a serial dispatch queue of its own. The policy server gives each engine an
/// event loop instead, so that a request is decoded, decided and answered on one thread.
final class DispatchQueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        self.queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.queue.async {
            job.runSynchronously(on: self.asUnownedSerialExecutor())
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
