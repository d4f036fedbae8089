import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A server started by a test that exited or never listened; the message carries its log.
public struct ServerStartFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Waiting for a server the tests started to accept connections.
public enum ServerReadiness {
    /// Waits until something accepts TCP connections on 127.0.0.1:`port`, or fails with the
    /// last lines of `log` when `process` exits or `timeout` passes.
    public static func waitForTCP(port: UInt16, process: Process, log: URL, name: String, timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else { throw ServerStartFailure("\(name) exited: \(self.tail(log))") }
            if self.acceptsTCP(port: port) { return }
            usleep(50_000)
        }
        throw ServerStartFailure("\(name) did not listen on 127.0.0.1:\(port) within \(Int(timeout)) s: \(self.tail(log))")
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` now.
    public static func acceptsTCP(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return LoopbackPorts.withAddress(port: port) { connect(fd, $0, $1) == 0 }
    }

    /// The last lines of a server's log, for an error message.
    public static func tail(_ log: URL, lines: Int = 10) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? "(no log at \(log.path))"
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }
}
