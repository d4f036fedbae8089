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
    /// is stopped as `stop` does, and `stderr` ends with a line saying so.
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
        try process.run()
        // Both pipes are drained on threads of their own until EOF.
        let stdout = PipeDrain(out.fileHandleForReading)
        let stderr = PipeDrain(err.fileHandleForReading)
        var timedOut = false
        if !Self.waitForExit(process, timeout: timeout) {
            timedOut = true
            Self.stop(process, grace: 0, name: "\(executable.lastPathComponent) \(arguments.joined(separator: " "))")
        }
        // A child the command left running may hold the pipes open: bounded too.
        let stdoutText = stdout.text(waitingAtMost: 5)
        var stderrText = stderr.text(waitingAtMost: 5)
        if timedOut { stderrText += "\n(test harness: killed after \(Int(timeout)) s without exiting)\n" }
        return Output(status: timedOut ? -1 : process.terminationStatus, stdout: stdoutText, stderr: stderrText, timedOut: timedOut)
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

    /// Sends SIGTERM and waits `grace` seconds. A process still running then gets SIGQUIT,
    /// on which the Swift runtime prints every thread's backtrace (to the process's log),
    /// and SIGKILL five seconds later; its children (the server a watchdog shell runs) get
    /// the same. Returns whether it stopped within the grace period; when not, says so on
    /// standard error, so the hang shows in the test output.
    @discardableResult
    public static func stop(_ process: Process, grace: TimeInterval = 10, name: String) -> Bool {
        guard process.isRunning else { return true }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        if Self.waitForExit(process, timeout: grace) { return true }
        let children = Self.children(of: pid)
        for child in children { kill(child, SIGQUIT) }
        kill(pid, SIGQUIT)
        if !Self.waitForExit(process, timeout: 5) {
            for child in Self.children(of: pid) + children { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
            _ = Self.waitForExit(process, timeout: 5)
        }
        FileHandle.standardError.write(Data("test harness: \(name) (pid \(pid)) did not stop within \(Int(grace)) s of SIGTERM: killed\n".utf8))
        return false
    }

    /// The processes whose parent is `pid`, read from /proc.
    static func children(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let child = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // "pid (comm) state ppid ...": the command name may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, pid_t(fields[1]) == pid else { return nil }
            return child
        }
    }
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
