import NIOCore

/// Runs a task's jobs on one event loop: a connection's task then reads, decides and
/// writes on the loop its channel lives on, beside the engine that serves it; and the DNS
/// lookups that engine's rules wait for run there too.
@available(macOS 15, *)
public final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
