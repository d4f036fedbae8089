#if canImport(Glibc)
import Glibc
#endif

package struct ClosedPortError: Error, CustomStringConvertible {
    package var description: String { "no closed loopback UDP port found below the ephemeral range" }
}

/// A loopback UDP port on which nothing listens, for "a server that refuses". Taken below
/// Linux's ephemeral range (32768 and up) on purpose: every test server binds port 0 and every
/// query socket is given an ephemeral port, so none of them can end up on it while a test
/// counts on its refusals (`LoopbackPorts.free()` returns ephemeral ports, which a scripted
/// server started a moment later can be given).
package enum ClosedLoopbackPort {
    package static func pick() throws -> UInt16 {
        for _ in 0..<100 {
            let port = UInt16.random(in: 10_000..<32_000)
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
