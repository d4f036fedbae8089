import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs and stops the processes tests start, never waiting without a bound: a command or a
/// server that hangs fails its test with what it printed, instead of holding the test run
/// (and CI) until something outside kills it.
public enum ChildProcess {
    /// What a command printed, and how it ended.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// The command ran past its time bound and was killed (`status` is then -1).
        public var timedOut: Bool
    }

    /// Runs `executable` to its end, reading standard output and error at once (one pipe
    /// filling up while the other is read would stall both ends). Past `timeout` seconds it
    /// is aborted (`abort`: its backtraces land in `stderr`), and `stderr` ends with a line
    /// saying so.
    public static func run(_ executable: URL, _ arguments: [String], in directory: URL? = nil,
                           timeout: TimeInterval = 120) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try Self.start(process)
        // Both pipes are drained on threads of their own until EOF.
        let stdout = PipeDrain(out.fileHandleForReading)
        let stderr = PipeDrain(err.fileHandleForReading)
        var timedOut = false
        if !Self.waitForExit(process, timeout: timeout) {
            timedOut = true
            Self.abort(process)
        }
        // A child the command left running may hold the pipes open: bounded too.
        let stdoutText = stdout.text(waitingAtMost: 5)
        var stderrText = stderr.text(waitingAtMost: 5)
        if timedOut { stderrText += "\n(test harness: aborted after \(Int(timeout)) s without exiting)\n" }
        return Output(status: timedOut ? -1 : process.terminationStatus, stdout: stdoutText, stderr: stderrText, timedOut: timedOut)
    }

    /// Starts `process` with no signal blocked. `Process.run()` hands the calling thread's
    /// signal mask to the child, and the threads tests run on (Swift's cooperative pool,
    /// threads made from them) block SIGTERM and SIGABRT among others; a server started so
    /// ignores the watchdog's SIGTERM, the watchdog waits for it forever, and so does the
    /// test. The child is therefore started from a thread of its own with an empty mask.
    public static func start(_ process: Process) throws {
        let result = SpawnResult()
        let thread = Thread {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            result.value = Result { try process.run() }
            result.done.signal()
        }
        thread.start()
        result.done.wait()
        try result.value.get()
    }

    /// Waits at most `timeout` seconds for `process` to exit; whether it did.
    public static func waitForExit(_ process: Process, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Sends SIGTERM and waits `grace` seconds; a process still running then is aborted
    /// (`abort`). Returns whether it stopped within the grace period; when not, says so on
    /// standard error, so the hang shows in the test output.
    @discardableResult
    public static func stop(_ process: Process, grace: TimeInterval = 10, name: String) -> Bool {
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGTERM)
        if Self.waitForExit(process, timeout: grace) { return true }
        Self.abort(process)
        FileHandle.standardError.write(Data("test harness: \(name) (pid \(process.processIdentifier)) did not stop within \(Int(grace)) s of SIGTERM: aborted\n".utf8))
        return false
    }

    /// SIGABRT, on which the Swift runtime prints every thread's backtrace (to the process's
    /// standard error: a server's log), first to the process's children (the server a
    /// watchdog shell runs: the shell itself would die at once and leave it running), then
    /// to the process; SIGKILL to what is left 15 seconds later (symbolicating takes seconds).
    public static func abort(_ process: Process) {
        let pid = process.processIdentifier
        let children = Self.children(of: pid)
        for child in children { kill(child, SIGABRT) }
        let deadline = Date().addingTimeInterval(15)
        while !Self.children(of: pid).isEmpty && Date() < deadline { usleep(50_000) }
        kill(pid, SIGABRT)
        if !Self.waitForExit(process, timeout: max(1, deadline.timeIntervalSinceNow)) {
            for child in Self.children(of: pid) + children { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
            _ = Self.waitForExit(process, timeout: 5)
        }
    }

    /// Whether `pid` is a live process: a zombie (dead, not reaped yet: an orphan waits for
    /// init to reap it) is not.
    public static func isLive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let state = stat[stat.index(after: close)...].split(separator: " ").first else { return false }
        return state != "Z" && state != "X"
    }

    /// The live processes whose parent is `pid` (zombies left out), read from /proc.
    public static func children(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let child = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // "pid (comm) state ppid ...": the command name may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, fields[0] != "Z", pid_t(fields[1]) == pid else { return nil }
            return child
        }
    }
}

private final class SpawnResult: @unchecked Sendable {
    // @unchecked: `value` is written before `done` is signalled and read after waiting for it.
    var value: Result<Void, any Error> = .success(())
    let done = DispatchSemaphore(value: 0)
}

/// Reads a pipe to its end on a thread of its own.
private final class PipeDrain: @unchecked Sendable {
    // @unchecked: `data` is written by the reading thread before `done` is signalled, and
    // read only after waiting for it.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func text(waitingAtMost seconds: TimeInterval) -> String {
        guard self.done.wait(timeout: .now() + seconds) == .success else { return "(output still open after the process ended)" }
        return String(decoding: self.data, as: UTF8.self)
    }
}
