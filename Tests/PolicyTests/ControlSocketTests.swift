import DNS
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
@testable import Policy
import Rules
import ServiceLifecycle
import Testing
import VrulesTestSupport

/// A policy server with its `ReloadService` running and a control socket in a directory of its
/// own. Each reload calls `load`, which the test sets: it may hold the reload, fail it, or
/// load the test rules again.
final class ControlHarness: @unchecked Sendable {
    enum Load: Sendable {
        case succeed
        case warn([String])
        case fail(String)
    }

    let directory: URL
    let path: String
    let policy: PolicyHarness
    let requests = ReloadRequests()
    let socket: ControlSocket
    private let group: ServiceGroup
    private let reloads: Task<Void, Never>
    /// How each reload ends; while `hold` is set a reload waits before it ends.
    let load = NIOLockedValueBox(Load.succeed)
    let hold = NIOLockedValueBox(false)
    let loads = NIOLockedValueBox(0)

    init(maximumConnections: Int = ControlSocket.defaultMaximumConnections,
         commandTimeout: TimeAmount = ControlSocket.defaultCommandTimeout,
         status: @escaping ControlProtocol.StatusSource = { _ in [] }) async throws {
        self.directory = URL(fileURLWithPath: "/tmp/vrules-control-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.path = self.directory.appendingPathComponent("control.sock").path
        self.policy = try await PolicyHarness.start()
        let resolver = self.policy.resolver
        let executor = await self.policy.server.service.currentEngines[0].executor
        let (load, hold, loads) = (self.load, self.hold, self.loads)
        let service = ReloadService(service: self.policy.server.service, requests: self.requests, logger: .policyTests) {
            // As a real load reads the files when it begins.
            let outcome = load.withLockedValue { $0 }
            loads.withLockedValue { $0 += 1 }
            while hold.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            if case .fail(let errors) = outcome { throw ReloadFailure(description: errors) }
            let engine = try RuleEngine(source: policyRules, path: "policy.lua", resolvers: SingleResolver(resolver), tracing: false,
                                        executor: executor)
            guard case .warn(let warnings) = outcome else { return ReloadService.Loaded(engines: [engine]) }
            return ReloadService.Loaded(engines: [engine], warnings: warnings)
        }
        // In a service group, as `vrules serve` runs it: stopping is a graceful shutdown.
        let group = ServiceGroup(services: [service], logger: .policyTests)
        self.group = group
        self.reloads = Task { try? await group.run() }
        self.socket = ControlSocket(path: self.path, requests: self.requests, status: status, logger: .policyTests,
                                    maximumConnections: maximumConnections, commandTimeout: commandTimeout)
        try await self.socket.start()
    }

    /// `vrules reload`'s request, off the cooperative pool.
    func reload(timeout: Double = 10) async throws -> ControlProtocol.Answer {
        try await self.send(ControlProtocol.reloadCommand, timeout: timeout)
    }

    func send(_ command: String, timeout: Double = 10) async throws -> ControlProtocol.Answer {
        let path = self.path
        return try await blocking { try ControlClient.send(command, to: path, timeout: timeout) }
    }

    /// Connects, sends `bytes`, optionally half-closes, and reads until the server closes.
    func exchange(_ bytes: [UInt8], halfClose: Bool = false) async throws -> String {
        let path = self.path
        return try await blocking {
            let client = try PolicyClient(unixPath: path)
            client.setTimeout(seconds: 10)
            try client.send(bytes)
            if halfClose { client.shutdownWrite() }
            return String(decoding: try client.readToEnd(), as: UTF8.self)
        }
    }

    func stopReloads() async {
        await self.group.triggerGracefulShutdown()
        await self.reloads.value
    }

    func stop() async {
        await self.stopReloads()
        await self.socket.stop()
        await self.policy.stop()
        try? FileManager.default.removeItem(at: self.directory)
    }
}

struct ReloadFailure: Error, CustomStringConvertible {
    var description: String
}

/// Waits up to 10 s for `condition`.
func eventually(_ condition: () -> Bool) async throws -> Bool {
    for _ in 0..<1000 {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Suite("The control socket (vrules reload)")
struct ControlSocketTests {
    @Test("a reload is answered with its outcome: ok, or failed with each error line printable, and the running rules stay")
    func outcomes() async throws {
        let harness = try await ControlHarness()
        #expect(try await harness.reload() == ControlProtocol.Answer(status: .ok, summary: "the rules and the configuration were reloaded"))
        harness.load.withLockedValue { $0 = .fail("policy.lua:3: unexpected symbol\nsecond line \u{1B}[2J with an escape") }
        let failed = try await harness.reload()
        #expect(failed.status == .failed)
        #expect(failed.summary == "the new rules or configuration did not load; the running ones stay")
        #expect(failed.details == ["policy.lua:3: unexpected symbol", "second line \\u{1B}[2J with an escape"])
        #expect(harness.loads.withLockedValue { $0 } == 2)
        // Loaded, with what the operator should know of the files: each a line of its own.
        harness.load.withLockedValue { $0 = .warn(["policy.max_connections changed", "two\nlines \u{7}"]) }
        #expect(try await harness.reload() == ControlProtocol.Answer(
            status: .ok, summary: "the rules and the configuration were reloaded",
            details: ["warning: policy.max_connections changed", "warning: two", "lines \\u{7}"]))
        let client = try harness.policy.client()
        #expect(try await blocking { try client.ask(request("MAIL", instance: "m1", sender: "x@spam.test")) } == "554 5.7.1 No spam")
        await harness.stop()
    }

    @Test("status answers with the server's lines, each printable, and does not wait for a reload that runs")
    func status() async throws {
        let harness = try await ControlHarness(status: { format in
            format == .json ? [#"{"rules":{"path":"main.lua"}}"#] : ["serving since now", "rules main.lua", "  main.lua:1: \u{1B}[2J"]
        })
        #expect(try await harness.send("status")
            == ControlProtocol.Answer(status: .ok, summary: "serving", details: ["serving since now", "rules main.lua", "  main.lua:1: \\u{1B}[2J"]))
        #expect(try await harness.send("status json")
            == ControlProtocol.Answer(status: .ok, summary: "serving", details: [#"{"rules":{"path":"main.lua"}}"#]))
        #expect(try await harness.send("status xml").status == .error)
        harness.hold.withLockedValue { $0 = true }
        async let held = harness.reload()
        #expect(try await eventually { harness.loads.withLockedValue { $0 } == 1 })
        #expect(try await harness.send("status", timeout: 2).status == .ok)
        harness.hold.withLockedValue { $0 = false }
        #expect(try await held.status == .ok)
        await harness.stop()
    }

    @Test("reloads asked while one runs fold into one more; each asker is told the outcome of a reload that began after it asked")
    func foldedReloads() async throws {
        let harness = try await ControlHarness()
        harness.hold.withLockedValue { $0 = true }
        async let first = harness.reload()
        #expect(try await eventually { harness.loads.withLockedValue { $0 } == 1 })
        // The files change while the first reload runs: the askers from now on must not be
        // told its outcome, which may come from the files before the change.
        harness.load.withLockedValue { $0 = .fail("policy.lua:1: broken") }
        async let second = harness.reload()
        async let third = harness.reload()
        async let fourth = harness.reload()
        #expect(try await eventually { harness.requests.waitingCount == 3 })
        harness.hold.withLockedValue { $0 = false }
        #expect(try await first.status == .ok)
        for answer in try await [second, third, fourth] {
            #expect(answer.status == .failed && answer.details == ["policy.lua:1: broken"], "\(answer)")
        }
        #expect(harness.loads.withLockedValue { $0 } == 2)
        await harness.stop()
    }

    @Test("an asker waiting when the server stops, and one asking after, are told it is stopping")
    func stopping() async throws {
        let harness = try await ControlHarness()
        harness.hold.withLockedValue { $0 = true }
        async let running = harness.reload()
        #expect(try await eventually { harness.loads.withLockedValue { $0 } == 1 })
        async let waiting = harness.reload()
        #expect(try await eventually { harness.requests.waitingCount == 1 })
        let stopped = Task { await harness.stopReloads() }
        try await Task.sleep(for: .milliseconds(50))
        harness.hold.withLockedValue { $0 = false }
        await stopped.value
        #expect(try await running.status == .ok)
        #expect(try await waiting == ControlProtocol.Answer(status: .stopping, summary: "the server is stopping; nothing was reloaded"))
        #expect(try await harness.reload().status == .stopping)
        #expect(harness.loads.withLockedValue { $0 } == 1)
        await harness.stop()
    }

    @Test("hostile commands: unknown, with escapes, overlong, pipelined, half-closed; none reloads by mistake")
    func hostileCommands() async throws {
        let harness = try await ControlHarness()
        #expect(try await harness.exchange(Array("stats\n".utf8)) == "error unknown command 'stats' (the commands: reload, status, status json)\n")
        #expect(try await harness.exchange(Array("reload\u{1B}]0;owned\u{07}\r\n".utf8))
            == "error unknown command 'reload\\u{1B}]0;owned\\u{7}' (the commands: reload, status, status json)\n")
        #expect(try await harness.exchange(Array("\n".utf8)) == "error unknown command '' (the commands: reload, status, status json)\n")
        #expect(try await harness.exchange([UInt8](repeating: UInt8(ascii: "r"), count: 200))
            == "error a command is one line of at most 64 bytes\n")
        // 10 MB without a newline: refused at the 66th byte and closed, nothing buffered (the
        // close with the client's bytes unread resets the connection, so its answer may be lost).
        let path = harness.path
        let flood = try await blocking {
            let client = try PolicyClient(unixPath: path)
            client.setTimeout(seconds: 10)
            let chunk = [UInt8](repeating: UInt8(ascii: "r"), count: 65_536)
            var sent = 0
            while sent < 10_000_000, (try? client.send(chunk)) != nil { sent += chunk.count }
            return (sent, String(decoding: (try? client.readToEnd()) ?? [], as: UTF8.self))
        }
        #expect(flood.0 < 10_000_000, "the server read all \(flood.0) bytes")
        #expect(flood.1 == "" || flood.1 == "error a command is one line of at most 64 bytes\n", "\(flood.1)")
        #expect(try await harness.exchange(Array((String(repeating: "x", count: 65) + "\n").utf8))
            == "error a command is one line of at most 64 bytes\n")
        #expect(harness.loads.withLockedValue { $0 } == 0)
        // One command per connection: what follows it is never read.
        #expect(try await harness.exchange(Array("reload\nreload\nreload\n".utf8)) == "ok the rules and the configuration were reloaded\n")
        #expect(harness.loads.withLockedValue { $0 } == 1)
        // A command without its newline, then a half-close: still a command, still answered.
        #expect(try await harness.exchange(Array("reload".utf8), halfClose: true) == "ok the rules and the configuration were reloaded\n")
        #expect(try await harness.exchange([], halfClose: true) == "")
        #expect(harness.loads.withLockedValue { $0 } == 2)
        // As many clients as the cap allows ask and never read their answers: each connection
        // is closed once its answer is written, so the next client is not kept waiting.
        let silent = try (0..<ControlSocket.defaultMaximumConnections).map { _ in
            let client = try PolicyClient(unixPath: path)
            try client.send(Array("status\n".utf8))
            return client
        }
        let started = Date()
        #expect(try await harness.reload(timeout: 5).status == .ok)
        #expect(Date().timeIntervalSince(started) < 5)
        _ = silent
        await harness.stop()
    }

    @Test("a client that sends nothing, or trickles its command, is answered error and closed at the deadline")
    func slowClients() async throws {
        let harness = try await ControlHarness(commandTimeout: .milliseconds(400))
        let started = Date()
        #expect(try await harness.exchange([]) == "error no whole command within 400 ms\n")
        #expect(Date().timeIntervalSince(started) < 5)
        let path = harness.path
        let trickled = try await blocking {
            let client = try PolicyClient(unixPath: path)
            client.setTimeout(seconds: 10)
            // A byte every 100 ms restarts no timer: the deadline counts from the connection.
            // (Until the server answers: bytes it has not read when it closes would reset the
            // connection and lose the answer this test reads.)
            for byte in Array("reloa".utf8) + Array(repeating: UInt8(ascii: "d"), count: 20) where !client.hasInput {
                guard (try? client.send([byte])) != nil else { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return String(decoding: try client.readToEnd(), as: UTF8.self)
        }
        #expect(trickled == "error no whole command within 400 ms\n")
        #expect(harness.loads.withLockedValue { $0 } == 0)
        await harness.stop()
    }

    @Test("connections past the cap wait in the backlog and are served once one closes")
    func connectionCap() async throws {
        let harness = try await ControlHarness(maximumConnections: 2, commandTimeout: .seconds(2))
        let path = harness.path
        let idle = try (0..<2).map { _ in try PolicyClient(unixPath: path) }
        try await Task.sleep(for: .milliseconds(200))
        let started = Date()
        let answer = try await harness.reload()
        let waited = Date().timeIntervalSince(started)
        #expect(answer.status == .ok)
        // Served only after an idle connection was closed at its 2 s deadline.
        #expect(waited > 1.0 && waited < 8, "\(waited)")
        _ = idle
        await harness.stop()
    }

    @Test("the socket is mode 0600 from the start; a stale socket is replaced, another file is left and refused; stop removes only its own")
    func socketFile() async throws {
        let harness = try await ControlHarness()
        var status = stat()
        #expect(lstat(harness.path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600 && (status.st_mode & S_IFMT) == S_IFSOCK)
        await harness.socket.stop()
        #expect(!FileManager.default.fileExists(atPath: harness.path))

        // A socket left by a server that died is replaced.
        try leaveStaleSocket(at: harness.path)
        let second = ControlSocket(path: harness.path, requests: harness.requests, logger: .policyTests)
        try await second.start()
        #expect(try await harness.reload().status == .ok)
        // Another server's socket moved into place after start stays at stop.
        try FileManager.default.removeItem(atPath: harness.path)
        _ = FileManager.default.createFile(atPath: harness.path, contents: Data("not ours".utf8))
        await second.stop()
        #expect(FileManager.default.fileExists(atPath: harness.path))

        // A file that is not a socket is never removed, and the start says why.
        let third = ControlSocket(path: harness.path, requests: harness.requests, logger: .policyTests)
        await #expect {
            try await third.start()
        } throws: { error in
            "\(error)" == "unix:\(harness.path): the path exists and is not a socket"
        }
        #expect(try String(contentsOfFile: harness.path, encoding: .utf8) == "not ours")
        await harness.stop()
    }

    @Test("vrules reload's client says what is wrong: no socket, nobody listening, no answer, not an answer")
    func clientFailures() async throws {
        let directory = "/tmp/vrules-control-client-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func failure(_ path: String, timeout: Double = 5) async throws -> ControlClient.Failure? {
            do {
                _ = try await blocking { try ControlClient.send("reload", to: path, timeout: timeout) }
                return nil
            } catch let failure as ControlClient.Failure {
                return failure
            }
        }
        let missing = try #require(try await failure("\(directory)/none.sock"))
        #expect(missing.kind == .unreachable)
        #expect(missing.description == "\(directory)/none.sock: no control socket there: is vrules serve running with --control \(directory)/none.sock?")

        // Bound but not listening: a socket left by a server that stopped.
        let leftPath = "\(directory)/left.sock"
        let left = try FakeControlServer(path: leftPath, listening: false)
        let refused = try #require(try await failure(leftPath))
        #expect(refused.kind == .unreachable && refused.description.hasSuffix("nothing listens there (a socket left by a server that stopped?)"))
        left.close()

        // Listens, takes the command, never answers: the client gives up at its timeout.
        let silentPath = "\(directory)/silent.sock"
        let silent = try FakeControlServer(path: silentPath) { _ in Thread.sleep(forTimeInterval: 3); return nil }
        let started = Date()
        let quiet = try #require(try await failure(silentPath, timeout: 0.5))
        #expect(quiet.kind == .noAnswer)
        #expect(quiet.description == "\(silentPath): no answer within 0.5 s; the reload may still finish: see the server's log")
        #expect(Date().timeIntervalSince(started) < 2.5)
        silent.close()

        let garbagePath = "\(directory)/garbage.sock"
        let garbage = try FakeControlServer(path: garbagePath) { _ in Array("HTTP/1.1 400 Bad Request\r\n\u{1B}[2J".utf8) }
        let notAnswer = try #require(try await failure(garbagePath))
        #expect(notAnswer.description == "\(garbagePath): not an answer from vrules serve: 'HTTP/1.1 400 Bad Request\\r'")
        garbage.close()

        let closingPath = "\(directory)/closing.sock"
        let closing = try FakeControlServer(path: closingPath) { _ in [] }
        let closed = try #require(try await failure(closingPath))
        #expect(closed.kind == .noAnswer && closed.description == "\(closingPath): the server closed the connection without an answer")
        closing.close()

        let tooLong = try #require(try await failure("/tmp/" + String(repeating: "x", count: 120)))
        #expect(tooLong.kind == .unreachable && tooLong.description.hasSuffix("is not a path a UNIX socket can have (1 to 107 bytes)"))
    }
}

/// A UNIX socket server on a thread: each connection's command is read to its newline and
/// `answer` says what to write back (nil: hold the connection open until closed).
final class FakeControlServer: @unchecked Sendable {
    private let descriptor: Int32
    private let path: String

    init(path: String, listening: Bool = true, answer: @escaping @Sendable ([UInt8]) -> [UInt8]? = { _ in nil }) throws {
        self.path = path
        self.descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw PolicyClient.Failure(description: "bind \(path): errno \(errno)") }
        guard listening else { return }
        listen(self.descriptor, 4)
        let descriptor = self.descriptor
        Thread.detachNewThread {
            while true {
                let connection = accept(descriptor, nil, nil)
                guard connection >= 0 else { return }
                var command: [UInt8] = []
                var byte: UInt8 = 0
                while read(connection, &byte, 1) == 1, byte != 10 { command.append(byte) }
                if let bytes = answer(command) {
                    _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                }
                Glibc.close(connection)
            }
        }
    }

    func close() {
        shutdown(self.descriptor, Int32(SHUT_RDWR))
        Glibc.close(self.descriptor)
        unlink(self.path)
    }
}
