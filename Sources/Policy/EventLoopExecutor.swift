import NIOCore
import DNS

/// One event loop as both executors its work needs: the serial executor of the actors that
/// run there (an engine and its shard) and the task executor of the tasks that call them
/// (the requests read on the loop, the DNS lookups its rules wait for).
///
/// One object in both roles, with both set when a job runs: a task that prefers this
/// executor then enters those actors, and every `await` inside a stage returns, without a
/// new turn of the loop. With the loop's own serial executor beside a separate task
/// executor, the runtime saw two executors and queued each such step on the loop again
/// (about twenty loop turns per transaction in the engine benchmark).
@available(macOS 15, *)
public final class EventLoopExecutor: SerialExecutor, TaskExecutor, ClosureExecuting, @unchecked Sendable {
    // @unchecked: `loop` is immutable and an EventLoop is Sendable.
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute {
            job.runSynchronously(isolatedTo: self.asUnownedSerialExecutor(), taskExecutor: self.asUnownedTaskExecutor())
        }
    }

    public func execute(_ body: @escaping @Sendable () -> Void) {
        self.loop.execute(body)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(self.loop.inEventLoop, "not on the event loop of this executor")
    }
}
