import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The receiving end of systemd's notification protocol, as the service manager holds it: a
/// UNIX datagram socket at a path (in a fresh directory, mode 0777 so that a process of
/// another uid may send) or in the abstract namespace. Tests give `environmentValue` to a
/// process as `NOTIFY_SOCKET` and read what it sends.
public final class NotifySocket: @unchecked Sendable {
    // @unchecked: one test thread reads; the descriptor is closed on deinit only.
    public enum Kind: Sendable { case path, abstract }

    private let descriptor: Int32
    private let directory: URL?
    /// What `NOTIFY_SOCKET` must say to reach this socket.
    public let environmentValue: String

    public init(_ kind: Kind = .path) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw PolicyClient.Failure(description: "socket() failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name: [UInt8]
        switch kind {
        case .path:
            let directory = URL(fileURLWithPath: "/tmp/vrules-notify-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            self.directory = directory
            self.environmentValue = directory.appendingPathComponent("notify").path
            name = Array(self.environmentValue.utf8)
        case .abstract:
            self.directory = nil
            let abstract = "vrules-notify-\(UUID().uuidString)"
            self.environmentValue = "@" + abstract
            name = [0] + Array(abstract.utf8)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + name.count + (kind == .path ? 1 : 0))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw PolicyClient.Failure(description: "cannot bind \(self.environmentValue): errno \(errno)")
        }
        if kind == .path { chmod(self.environmentValue, 0o777) }
        self.descriptor = descriptor
    }

    deinit {
        close(self.descriptor)
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// The next datagram, or nil when none comes within `timeout` seconds.
    public func receive(timeout: Double = 15) -> String? {
        var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = recv(self.descriptor, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// The next datagram, or nil when none comes within `timeout` seconds, waiting without
    /// holding a thread: an async test that blocked in `poll` would hold one of the few
    /// threads every async test shares, and starve the tests (or the service) it waits for.
    public func next(within timeout: Double) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let message = self.receive(timeout: 0) { return message }
            try? await Task.sleep(for: .milliseconds(10))
        } while Date() < deadline
        return self.receive(timeout: 0)
    }

    /// Datagrams until one contains `text` (that one included), or nil after `timeout` seconds.
    public func receive(until text: String, timeout: Double = 15) -> [String]? {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [String] = []
        while case let left = deadline.timeIntervalSinceNow, left > 0, let message = self.receive(timeout: left) {
            received.append(message)
            if message.contains(text) { return received }
        }
        return nil
    }
}
