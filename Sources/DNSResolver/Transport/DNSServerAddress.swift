import DNS
import NIOCore

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
            guard let ip = IPAddress(String(text[text.index(after: text.startIndex)..<close])), !ip.isIPv4 else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                self.init(ip: ip, port: defaultPort)
            } else {
                guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), port != 0 else { return nil }
                self.init(ip: ip, port: port)
            }
            return
        }
        if let ip = IPAddress(text) {
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

    func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: self.ip.description, port: Int(self.port))
    }

    /// The address of the same family to bind the client socket to, with port 0 so that the
    /// kernel picks a fresh random ephemeral port for every query.
    var bindHost: String { self.ip.isIPv4 ? "0.0.0.0" : "::" }
}

extension SocketAddress {
    /// Compares address and port, ignoring whatever else differs between two encodings.
    func isSameEndpoint(as other: SocketAddress) -> Bool {
        guard self.port == other.port else { return false }
        switch (self, other) {
        case (.v4(let a), .v4(let b)):
            return a.address.sin_addr.s_addr == b.address.sin_addr.s_addr
        case (.v6(let a), .v6(let b)):
            return withUnsafeBytes(of: a.address.sin6_addr) { left in
                withUnsafeBytes(of: b.address.sin6_addr) { right in left.elementsEqual(right) }
            }
        default:
            return false
        }
    }
}
