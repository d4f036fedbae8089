import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
@testable import Policy
import Prometheus
import Testing

/// The metrics endpoint against clients that pipeline and never read, never leave, or come
/// in numbers: each test failed before the bound it names.
@Suite("Metrics endpoint against hostile clients", .serialized)
struct MetricsEndpointTests {
    /// A blocking TCP client on loopback with a receive timeout.
    final class RawClient {
        let descriptor: Int32

        init(port: Int, receiveBuffer: Int32? = nil) throws {
            self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            if var size = receiveBuffer {
                setsockopt(self.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
            setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(self.descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw CancellationError() }
        }

        deinit { close(self.descriptor) }

        /// Sends all of `bytes`; false once the server has closed or stopped taking them.
        func send(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { return false }
                offset += sent
            }
            return true
        }

        /// What arrives before `seconds` pass or the server closes; nil when the server closed
        /// (or reset) with nothing more to read.
        func read(for seconds: Double) -> [UInt8]? {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
                if count > 0 { received += buffer[0..<count]; continue }
                if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    return received.isEmpty ? nil : received
                }
                if received.count > 0 && String(decoding: received, as: UTF8.self).contains("vrules_test_up") { break }
            }
            return received
        }

        /// Reads and discards for up to `seconds`: how many bytes came, and whether the
        /// server closed (or reset) the connection.
        func drain(for seconds: Double) -> (bytes: Int, closed: Bool) {
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
                if count > 0 { total += count; continue }
                if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return (total, true) }
            }
            return (total, false)
        }
    }

    static let scrape = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)

    func endpoint(maximumConnections: Int = MetricsEndpoint.defaultMaximumConnections,
                  idleTimeout: TimeAmount = MetricsEndpoint.defaultIdleTimeout,
                  requestTimeout: TimeAmount = MetricsEndpoint.defaultRequestTimeout) async throws -> (MetricsEndpoint, Int) {
        let registry = PrometheusCollectorRegistry()
        registry.makeGauge(name: "vrules_test_up").set(to: 1.0)
        let endpoint = MetricsEndpoint(registry: registry, host: "127.0.0.1", port: 0,
                                       maximumConnections: maximumConnections, idleTimeout: idleTimeout,
                                       requestTimeout: requestTimeout)
        let address = try await endpoint.start()
        return (endpoint, try #require(address?.port))
    }

    func scraped(_ client: RawClient) -> Bool {
        guard client.send(Self.scrape), let answer = client.read(for: 2) else { return false }
        let text = String(decoding: answer, as: UTF8.self)
        return text.hasPrefix("HTTP/1.1 200 OK") && text.contains("vrules_test_up 1")
    }

    @Test("a client that pipelines scrapes and never reads is closed; the others are still served")
    func pipelinesAndNeverReads() async throws {
        let (endpoint, port) = try await self.endpoint()
        defer { endpoint.stopForTests() }
        let hostile = try RawClient(port: port, receiveBuffer: 4096)
        let burst = Array([[UInt8]](repeating: Self.scrape, count: 1_000).joined())
        // Until the server stops taking them (it closes, or its buffers are full), for 15 s at
        // most: a server that reads them slowly took the unbounded loop 335 s in one CI run.
        let flooding = Date().addingTimeInterval(15)
        for _ in 0..<1_000 where Date() < flooding && hostile.send(burst) {}
        // Without the bound the server keeps every answer it owes, and hands them all over
        // now (13 KiB each, thousands of them); with it the connection was closed after a few.
        let (bytes, closed) = hostile.drain(for: 5)
        #expect(closed, "the server kept the connection, and \(bytes) bytes of answers for it")
        #expect(bytes < 16 << 20)
        #expect(self.scraped(try RawClient(port: port)))
    }

    @Test("at the cap a new connection closes the one idle the longest: holders cannot keep a scraper out")
    func idlestEvicted() async throws {
        let (endpoint, port) = try await self.endpoint(maximumConnections: 2)
        defer { endpoint.stopForTests() }
        // Two holders that connect and send nothing: without eviction the scraper would wait
        // behind them until the idle timeout (120 s).
        let first = try RawClient(port: port)
        try await Task.sleep(for: .milliseconds(50))
        let second = try RawClient(port: port)
        try await Task.sleep(for: .milliseconds(50))
        let scraper = try RawClient(port: port)
        #expect(self.scraped(scraper))
        #expect(first.read(for: 1) == nil, "the longest idle holder is still open")
        // The scraper has just been answered: the next newcomer closes the second holder.
        let next = try RawClient(port: port)
        #expect(self.scraped(next))
        #expect(second.read(for: 1) == nil, "the second holder is still open")
        let again = try RawClient(port: port)
        #expect(self.scraped(again))
    }

    @Test("a connection that asks nothing for the idle timeout is closed")
    func idleClosed() async throws {
        let (endpoint, port) = try await self.endpoint(idleTimeout: .milliseconds(200))
        defer { endpoint.stopForTests() }
        let idle = try RawClient(port: port)
        #expect(idle.read(for: 2) == nil, "the idle connection was left open")
        let active = try RawClient(port: port)
        #expect(self.scraped(active))
    }

    @Test("a request trickled a byte at a time is cut off at the request timeout; a kept-alive scraper is not")
    func trickledRequest() async throws {
        let (endpoint, port) = try await self.endpoint(requestTimeout: .milliseconds(500))
        defer { endpoint.stopForTests() }
        let slow = try RawClient(port: port)
        let started = Date()
        var cut = false
        // Each byte well inside the idle timeout (120 s), the whole far past the request timeout.
        for byte in Self.scrape.prefix(30) where !cut {
            cut = !slow.send([byte]) || slow.read(for: 0.1) == nil
        }
        #expect(cut, "a request trickled over \(Date().timeIntervalSince(started)) s was still being read")
        #expect(Date().timeIntervalSince(started) < 2.5)
        // Requests further apart than the request timeout, each whole at once, are answered.
        let scraper = try RawClient(port: port)
        #expect(self.scraped(scraper))
        try await Task.sleep(for: .seconds(1))
        #expect(self.scraped(scraper))
    }
}
