import Foundation

/// Runs the built `vrules` binary from the package root: what the CLI, linter and
/// integration tests share.
public struct CLI {
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("package root not found")
    }()

    public static let binary: URL = {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("vrules")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/vrules")
    }()

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `vrules` to its end; one that runs past `timeout` seconds is killed, with status -1
    /// and a line saying so on `stderr`.
    public static func run(_ arguments: [String], in directory: URL = packageRoot, timeout: TimeInterval = 120) throws -> Output {
        let output = try ChildProcess.run(self.binary, arguments, in: directory, timeout: timeout)
        return Output(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    /// A fresh directory with `files` (relative path → contents), removed by the caller.
    public static func scratch(_ files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-test-\(UUID().uuidString)")
        for (path, contents) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        return directory
    }
}
