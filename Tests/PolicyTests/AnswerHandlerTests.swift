import VrulesTestSupport
import DNS
import Foundation
import NIOCore
import NIOEmbedded
#if canImport(Glibc)
import Glibc
#endif
@testable import Policy
@testable import Rules
import Testing

/// The connection handler as an attacker and an operator see it: a client that pipelines
/// and never reads, a client that leaves while its decision runs, a server that stops
/// while decisions run.
@Suite("Policy connection handler")
struct AnswerHandlerTests {
    /// Rules answering every recipient with a reply as long as a reply may be, so that
    /// unread answers fill the socket buffers quickly.
    static let longReplyRules = """
    return { rcpt = { rule("long", function(ctx) return reject(reply(550, "5.7.1", string.rep("x", 380))) end) } }
    """

    @Test("a client that pipelines and never reads its answers stops being read; it gets every answer, in order, when it reads")
    func pipeliningWithoutReading() async throws {
        let harness = try await PolicyHarness.start(rules: Self.longReplyRules)
        let client = try RawClient(port: harness.port, receiveBuffer: 4096, sendTimeoutSeconds: 2)
        let one = PolicyClient.encode(request("RCPT", instance: "flood", recipient: "u@x.test"))
        // Unbounded, the server would read all of it (30 MB) and queue the answers in its
        // own memory; bounded, the socket buffers fill and the client's send blocks first.
        let maximum = 30_000_000 / one.count
        let (sent, rest) = try await blocking { () throws -> (Int, [UInt8]) in
            var sent = 0
            while sent < maximum {
                let written = try client.send(one)
                if written < one.count { return (sent, Array(one[written...])) }
                sent += 1
            }
            return (sent, [])
        }
        #expect(!rest.isEmpty, "the server read all \(sent) requests while none of the answers was read")
        #expect(sent > 100)
        // Reading now: the rest of the cut request goes out, and every request is answered.
        let expected = "550 5.7.1 " + String(repeating: "x", count: 380)
        let reader = Task {
            try await blocking { () throws -> (Int, Bool) in
                var count = 0
                var inOrder = true
                while let answer = try client.readAnswer() {
                    if answer != expected { inOrder = false }
                    count += 1
                }
                return (count, inOrder)
            }
        }
        try await blocking {
            try client.sendAll(rest)
            client.shutdownWrite()
        }
        let (answered, allExpected) = try await reader.value
        #expect(answered == sent + 1)
        #expect(allExpected)
        await harness.stop()
    }

    @Test("a client that closes while its decision is still running: the server finishes it, drops the answer, and serves others")
    func closesWhileDeciding() async throws {
        let harness = try await PolicyHarness.start()
        harness.resolver.delay = .milliseconds(300)
        let leaving = try harness.client()
        try await blocking {
            try leaving.send(PolicyClient.encode(request("RCPT", instance: "gone", recipient: "u@x.test", extra: ["client_port": "1"])))
        }
        try await Task.sleep(for: .milliseconds(50))
        leaving.close()
        harness.resolver.delay = .zero
        let other = try harness.client()
        #expect(try await ask(other, request("RCPT", instance: "stays", recipient: "later@x.test", extra: ["client_port": "2"]))
            == "450 4.2.1 Mailbox busy")
        // The decision of the client that left ran to its end: its transaction is held.
        try await Task.sleep(for: .milliseconds(400))
        #expect(await harness.server.service.transactionCount == 2)
        other.close()
        try await Task.sleep(for: .milliseconds(100))
        #expect(harness.server.openConnectionCount == 0, "no connection left open")
        await harness.stop()
    }

    @Test("stopping the server: a decision still running is answered before its connection closes; idle connections close")
    func stopAnswersDecisionsInFlight() async throws {
        let harness = try await PolicyHarness.start()
        harness.resolver.delay = .milliseconds(300)
        let busy = try harness.client()
        let idle = try harness.client()
        #expect(try await ask(idle, request("RCPT", instance: "warm", recipient: "u@x.test", extra: ["client_port": "3"])) == "DUNNO")
        try await blocking {
            try busy.send(PolicyClient.encode(request("RCPT", instance: "slow", recipient: "later@x.test", extra: ["client_port": "4"])))
        }
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let started = clock.now
        await harness.stop()
        #expect(clock.now - started < .seconds(5))
        #expect(try await answer(busy) == "450 4.2.1 Mailbox busy")
        #expect(try await answer(busy) == nil)
        #expect(try await answer(idle) == nil)
        #expect(harness.server.openConnectionCount == 0)
        // Nothing listens any more.
        #expect(throws: (any Error).self) { try PolicyClient(port: harness.port) }
    }

    @Test("stopping the server: a decision that outlasts the grace period is closed without an answer, and stop returns")
    func stopGraceBounded() async throws {
        let harness = try await PolicyHarness.start()
        harness.server.stopGrace = .milliseconds(500)
        harness.resolver.delay = .milliseconds(1500)
        let stuck = try harness.client()
        try await blocking {
            try stuck.send(PolicyClient.encode(request("RCPT", instance: "stuck", recipient: "u@x.test", extra: ["client_port": "5"])))
        }
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let started = clock.now
        await harness.stop()
        let took = clock.now - started
        #expect(took >= .milliseconds(450) && took < .seconds(3), "\(took)")
        #expect(try await answer(stuck) == nil)
        #expect(harness.server.openConnectionCount == 0)
        harness.resolver.delay = .zero
        // The abandoned decision still runs to its end (its DNS wait answers): let it, so
        // that no DNS wait outlives this test (DNSWaitTests counts them).
        let deadline = clock.now + .seconds(5)
        while DNSWaitDeadlines.shared.count > 0 && clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(DNSWaitDeadlines.shared.count == 0)
    }
}

@Suite("One request in flight, one read ahead")
struct ReadAheadTests {
    @Test("with one read ahead, a read goes out while one request is unanswered, and is held back at the second")
    func oneReadAhead() {
        var gate = ReadGate(readsAhead: 1)
        gate.requestTaken()
        #expect(gate.mayRead() == true, "one unanswered request: the read goes out")
        gate.requestTaken()
        #expect(gate.mayRead() == false, "two unanswered requests: no read")
        #expect(gate.mayRead() == false)
        #expect(gate.answered() == true, "the held read goes out when one answer is written")
        #expect(gate.mayRead() == true)
        #expect(gate.answered() == false, "no read was held: the answer lets none go")
    }
}

/// A blocking TCP client with a small receive buffer and a send timeout, to see when a
/// server stops reading.
final class RawClient: @unchecked Sendable {
    private let descriptor: Int32
    private var pending: [UInt8] = []

    init(port: Int, receiveBuffer: Int32, sendTimeoutSeconds: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PolicyClient.Failure(description: "socket() failed") }
        var size = receiveBuffer
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: sendTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var receiveTimeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &receiveTimeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw PolicyClient.Failure(description: "cannot connect: errno \(errno)")
        }
        self.descriptor = descriptor
    }

    deinit { Glibc.close(self.descriptor) }

    /// Sends what the socket takes before the send timeout; returns how many bytes.
    func send(_ bytes: [UInt8]) throws -> Int {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return offset }
            guard sent > 0 else { throw PolicyClient.Failure(description: "send failed: errno \(errno)") }
            offset += sent
        }
        return offset
    }

    func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = try self.send(Array(bytes[offset...]))
            offset += sent
        }
    }

    func shutdownWrite() { shutdown(self.descriptor, Int32(SHUT_WR)) }

    /// The next answer's action; nil at the end of the stream.
    func readAnswer() throws -> String? {
        var searched = 0
        while true {
            if self.pending.count >= 2 {
                for index in max(0, searched - 1)..<(self.pending.count - 1) where self.pending[index] == 10 && self.pending[index + 1] == 10 {
                    let answer = String(decoding: self.pending[..<index], as: UTF8.self)
                    self.pending.removeFirst(index + 2)
                    guard answer.hasPrefix("action=") else { throw PolicyClient.Failure(description: "unexpected '\(answer.prefix(40))'") }
                    return String(answer.dropFirst(7))
                }
                searched = self.pending.count
            }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            guard count > 0 else { throw PolicyClient.Failure(description: "receive failed: errno \(errno)") }
            self.pending += buffer[..<count]
        }
    }
}
