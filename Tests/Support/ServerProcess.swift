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

    /// Output goes to a file, never a pipe: a server that logs a line per decision would
    /// block on a full pipe that nobody reads.
    /// Runs a tool to its end and returns its exit status and what it printed (standard
    /// output and error together).
    public static func runToEnd(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

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
        try process.run()
        return process
    }
}
