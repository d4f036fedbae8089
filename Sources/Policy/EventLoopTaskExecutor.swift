import NIOCore

/// Runs a task's jobs on one event loop: a connection's task then reads, decides and
/// writes on the loop its channel lives on, beside the engine that serves it.
@available(macOS 15, *)
final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
