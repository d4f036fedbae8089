import Foundation

/// Starts the real servers tests need (knotd, unbound, vrules serve).
public enum ServerProcess {
    /// Runs the server under a small shell that ends it when the test process goes away,
    /// however it goes (a crash or a signal skips `atexit`), or when the shell is terminated.
    static let watchdog = """
        "$@" & child=$!
        trap 'kill $child 2>/dev/null; wait $child; exit 0' TERM INT
        parent=$PPID
        while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
        kill $child 2>/dev/null
        wait $child
        """

    /// Runs a tool to its end and returns its exit status and what it printed (standard
    /// output, then error); killed past `timeout` seconds (status -1).
    public static func runToEnd(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
        let output = try ChildProcess.run(URL(fileURLWithPath: executable), arguments, timeout: timeout)
        return (output.status, output.stdout + output.stderr)
    }

    /// Output goes to a file, never a pipe: a server that logs a line per decision would
    /// block on a full pipe that nobody reads.
    public static func launch(_ executable: String, _ arguments: [String], log: URL, directory: URL? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.watchdog, "vrules-test-server", executable] + arguments
        if let directory { process.currentDirectoryURL = directory }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try ChildProcess.start(process)
        return process
    }

    /// Stops a server `launch` started (its watchdog shell ends the server on SIGTERM), killing
    /// both if it does not stop within `grace` seconds; whether it stopped.
    @discardableResult
    public static func stop(_ process: Process, name: String, grace: TimeInterval = 10) -> Bool {
        ChildProcess.stop(process, grace: grace, name: name)
    }
}
