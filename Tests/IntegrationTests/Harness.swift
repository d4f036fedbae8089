import Foundation
import VrulesTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A missing Debian package, a server that would not start, or an SMTP conversation that
/// went wrong. The message says what to install or what happened, with the servers' logs,
/// so that a test needing a real server fails loudly instead of passing silently.
struct SetupError: Error, CustomStringConvertible {
    var description: String
}

enum Harness {
    static let packageRoot = CLI.packageRoot
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/postfix")

    static func requireExecutable(_ path: String, package: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw SetupError(description: "\(path) is missing: install the Debian package '\(package)' "
                + "(DEBIAN_FRONTEND=noninteractive apt-get install -y \(package))")
        }
    }

    static func canConnect(port: UInt16) -> Bool { ServerReadiness.acceptsTCP(port: port) }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitForTCP(port: UInt16, process: Process?, log: URL, name: String, timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let process, !process.isRunning {
                throw SetupError(description: "\(name) exited: \(self.tail(log))")
            }
            if self.canConnect(port: port) { return }
            usleep(50_000)
        }
        throw SetupError(description: "\(name) did not start listening on 127.0.0.1:\(port) within \(Int(timeout)) s: \(self.tail(log))")
    }

    static func tail(_ log: URL, lines: Int = 12) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? "(no log at \(log.path))"
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n    ")
    }

    static func launch(_ executable: String, _ arguments: [String], log: URL, directory: URL) throws -> Process {
        try ServerProcess.launch(executable, arguments, log: log, directory: directory)
    }

    /// Runs a command to completion; its output goes to a file, not a pipe: `postfix start`
    /// leaves daemons behind that would hold a pipe open.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], in directory: URL, timeout: TimeInterval = 60) throws -> String {
        let output = directory.appendingPathComponent("command-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try ChildProcess.start(process)
        guard ChildProcess.waitForExit(process, timeout: timeout) else {
            ChildProcess.abort(process)
            throw SetupError(description: "\(executable) \(arguments.joined(separator: " ")) did not finish within \(Int(timeout)) s")
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw SetupError(description: "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(text)")
        }
        return text
    }

    /// Stops a server `launch` started; one that ignores SIGTERM for 10 s is killed (and the
    /// harness says so on standard error). Whether it stopped on SIGTERM.
    @discardableResult
    static func stop(_ process: Process, name: String) -> Bool {
        ServerProcess.stop(process, name: name)
    }
}

/// Runs blocking work (starting processes, polling ports, socket I/O) on a thread of its
/// own, so that it never occupies the threads of Swift's cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
