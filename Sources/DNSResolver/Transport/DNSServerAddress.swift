import DNS
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A name server: an IP address and a port. Parsed from `"1.2.3.4"`, `"1.2.3.4:5300"`,
/// `"::1"` or `"[::1]:5300"`; printed in the bracketed form so that it parses back.
public struct DNSServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16 = 53) {
        self.ip = ip
        self.port = port
    }

    public init?(parsing text: String, defaultPort: UInt16 = 53) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            guard let ip = IPAddress(preservingFamily: String(text[text.index(after: text.startIndex)..<close])), !ip.isIPv4 else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                self.init(ip: ip, port: defaultPort)
            } else {
                guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), port != 0 else { return nil }
                self.init(ip: ip, port: port)
            }
            return
        }
        if let ip = IPAddress(preservingFamily: text) {
            self.init(ip: ip, port: defaultPort)
            return
        }
        // "a.b.c.d:port": exactly one colon, so never a bare IPv6 address.
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let ip = IPAddress(String(parts[0])), ip.isIPv4,
              let port = UInt16(parts[1]), port != 0 else { return nil }
        self.init(ip: ip, port: port)
    }

    public var description: String {
        self.ip.isIPv4 ? "\(self.ip):\(self.port)" : "[\(self.ip)]:\(self.port)"
    }

    /// Built from the address bytes directly: going through text would cost an `inet_ntop`
    /// and an `inet_pton` on every query.
    func socketAddress() throws -> SocketAddress {
        switch self.ip {
        case .v4(let bytes):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = self.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: bytes.prefix(4)) }
            return SocketAddress(address, host: "")
        case .v6(let bytes):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = self.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes.prefix(16)) }
            return SocketAddress(address, host: "")
        }
    }

    /// Calls `body` with the raw `sockaddr` of this server, for the system calls of the UDP
    /// reactor.
    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        switch self.ip {
        case .v4(let bytes):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = self.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: bytes.prefix(4)) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bytes):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = self.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes.prefix(16)) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
