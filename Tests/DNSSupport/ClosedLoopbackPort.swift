#if canImport(Glibc)
import Glibc
#endif

package struct ClosedPortError: Error, CustomStringConvertible {
    package var description: String { "no closed loopback UDP port found in 10000-19999" }
}

/// A loopback UDP port on which nothing listens, for "a server that refuses". Taken from
/// 10000–19999 on purpose: test servers bind port 0 (an ephemeral port, 32768 and up) or a port
/// from `LoopbackPorts` (20000–31999), and every query socket is given an ephemeral port, so
/// none of them can end up on it while a test counts on its refusals.
package enum ClosedLoopbackPort {
    package static func pick() throws -> UInt16 {
        for _ in 0..<100 {
            let port = UInt16.random(in: 10_000..<20_000)
            let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            if bound { return port }
        }
        throw ClosedPortError()
    }
}
