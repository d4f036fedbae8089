import DNS
import DNSTestSupport
import Foundation
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import DNSResolver

/// A clock the tests move by hand, for TTL countdown and expiry.
final class ManualClock: Sendable {
    private let value = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(1_000_000_000_000))
    var now: @Sendable () -> NIODeadline { { self.value.withLockedValue { $0 } } }
    func advance(seconds: Int64) { self.value.withLockedValue { $0 = $0 + .seconds(seconds) } }
}

func a(_ name: String, _ ip: String, ttl: UInt32 = 300) -> DNSResourceRecord {
    DNSResourceRecord(name: name, ttl: ttl, data: .a(IPAddress(ip)!))
}

func cname(_ name: String, _ target: String, ttl: UInt32 = 300) -> DNSResourceRecord {
    DNSResourceRecord(name: name, ttl: ttl, data: .cname(target))
}

func soa(_ zone: String, ttl: UInt32 = 3600, minimum: UInt32 = 60) -> DNSResourceRecord {
    DNSResourceRecord(name: zone, ttl: ttl, data: .soa(SOAData(
        mname: "ns.\(zone)", rname: "hostmaster.\(zone)", serial: 1, refresh: 3600, retry: 600,
        expire: 86400, minimum: minimum)))
}

/// A script that answers from a fixed record set like an authoritative server of `zone`:
/// records of the asked name and type, a CNAME for the name if there is one, else NODATA or
/// NXDOMAIN with the SOA.
func zoneScript(_ zone: String, _ records: [DNSResourceRecord], soaTTL: UInt32 = 3600, soaMinimum: UInt32 = 60) -> DNSServerScript {
    return { query, _ in
        let question = query.questions[0]
        let matching = records.filter { $0.name == question.name && $0.type == question.type }
        if !matching.isEmpty { return [.send(ScriptedDNSServer.reply(to: query, answers: matching))] }
        if let alias = records.first(where: { $0.name == question.name && $0.type == .cname }) {
            return [.send(ScriptedDNSServer.reply(to: query, answers: [alias]))]
        }
        let exists = records.contains { $0.name == question.name }
        return [.send(ScriptedDNSServer.reply(to: query, rcode: exists ? .noError : .nxDomain,
                                              authority: [soa(zone, ttl: soaTTL, minimum: soaMinimum)]))]
    }
}

func options(timeout: TimeAmount = .seconds(1), attempts: Int = 0, concurrency: Int = 1,
             cacheSize: Int = 32, rotate: Bool = false, validate: Bool = false,
             preserveIntermediates: Bool = true) -> DNSResolverOptions {
    DNSResolverOptions(timeout: timeout, attempts: attempts, rotate: rotate, validate: validate,
                       cacheSize: cacheSize, numConcurrentReqs: concurrency,
                       preserveIntermediates: preserveIntermediates)
}

func addresses(_ result: DNSQueryResult) -> [String] {
    guard case .success(let answer) = result else { return [] }
    return answer.records.map { record -> String in
        switch record.data {
        case .a(let ip), .aaaa(let ip): return ip.description
        default: return "\(record.data)"
        }
    }
}

func errorKind(_ result: DNSQueryResult) -> DNSError.Kind? {
    if case .failure(let error) = result { return error.kind }
    return nil
}

func outcome(_ result: DNSQueryResult) -> DNSOutcome? {
    if case .success(let answer) = result { return answer.outcome }
    return nil
}

/// Milliseconds taken by `body`.
func elapsedMilliseconds<T>(_ body: () async throws -> T) async rethrows -> (T, Int64) {
    let start = NIODeadline.now()
    let value = try await body()
    return (value, (NIODeadline.now() - start).nanoseconds / 1_000_000)
}

/// Runs `body` with started servers and always stops them.
func withServers<T>(_ scripts: [DNSServerScript], _ body: ([ScriptedDNSServer]) async throws -> T) async throws -> T {
    var servers: [ScriptedDNSServer] = []
    for script in scripts { servers.append(try await ScriptedDNSServer.start(script: script)) }
    do {
        let value = try await body(servers)
        for server in servers { await server.stop() }
        return value
    } catch {
        for server in servers { await server.stop() }
        throw error
    }
}

/// Descriptors open in this process that are UDP sockets connected to 127.0.0.1:`port`, found
/// by asking each descriptor of /proc/self/fd for its peer: the reactor's sockets still serving
/// an exchange with a server there (an idle one is disconnected).
func udpSocketsConnected(toPort port: UInt16) throws -> Int {
    let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
    return descriptors.filter { descriptor in
        var type: Int32 = 0
        var typeLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0,
              type == Int32(SOCK_DGRAM.rawValue) else { return false }
        var peer = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) == 0 }
        }
        return named && peer.sin_family == sa_family_t(AF_INET) && UInt16(bigEndian: peer.sin_port) == port
    }.count
}
