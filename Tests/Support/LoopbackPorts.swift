#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct LoopbackPortError: Error, CustomStringConvertible {
    public var description: String { "no free loopback port in \(LoopbackPorts.range)" }
}

/// Ports for the servers tests start on 127.0.0.1.
///
/// Taken from 20000–31999, below Linux's ephemeral range (32768 and up): a port the kernel
/// picked for `bind(0)` could be handed out again to the next caller or to any client socket
/// (an SMTP client, Postfix's policy connection, a DNS query) before the server binds it, and
/// a server that then fails to bind looks started because something else answers there.
/// Ports below 20000 are left to `ClosedLoopbackPort`, which needs one nothing listens on. A
/// port is handed out once per test process.
public enum LoopbackPorts {
    public static let range: Range<UInt16> = 20_000..<32_000
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut: Set<UInt16> = []

    /// A loopback port free for both UDP and TCP at the time of asking, never returned before.
    public static func free() throws -> UInt16 {
        for _ in 0..<200 {
            let port = UInt16.random(in: Self.range)
            let isNew = Self.lock.withLock { Self.handedOut.insert(port).inserted }
            guard isNew else { continue }
            if Self.canBind(port, type: SOCK_DGRAM) && Self.canBind(port, type: SOCK_STREAM) { return port }
        }
        throw LoopbackPortError()
    }

    private static func canBind(_ port: UInt16, type: __socket_type) -> Bool {
        let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return Self.withAddress(port: port) { bind(descriptor, $0, $1) == 0 }
    }

    /// 127.0.0.1:`port` as a `sockaddr`, for `bind` and `connect`.
    public static func withAddress<T>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
