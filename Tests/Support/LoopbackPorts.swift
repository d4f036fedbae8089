#if canImport(Glibc)
import Glibc
#endif

public struct LoopbackPortError: Error, CustomStringConvertible {
    public var description: String { "no free loopback port" }
}

/// Ports for the servers tests start on 127.0.0.1.
public enum LoopbackPorts {
    /// A loopback port free for both UDP and TCP at the time of asking.
    public static func free() throws -> UInt16 {
        for _ in 0..<50 {
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(udp) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, length) == 0 && getsockname(udp, $0, &length) == 0 }
            }
            guard bound else { continue }
            let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(tcp) }
            let tcpBound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tcp, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if tcpBound { return UInt16(bigEndian: address.sin_port) }
        }
        throw LoopbackPortError()
    }
}
