import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import ServiceManager
import Testing
import VrulesTestSupport

/// Log entries, kept for the test to read.
final class RecordedLog: LogHandler, @unchecked Sendable {
    // @unchecked: `entries` is behind its own lock; the rest is set before use.
    let entries = NIOLockedValueBox<[(Logger.Level, String)]>([])
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.entries.withLockedValue { $0.append((level, "\(message) \(fields)")) }
    }

    var logger: Logger { Logger(label: "test") { _ in self } }
}

@Suite("The service manager's notifications")
struct ServiceManagerTests {
    @Test("NOTIFY_SOCKET: a path, an abstract name, or unset; anything else is refused with the reason")
    func address() throws {
        let logger = Logger(label: "test")
        #expect(try ServiceManager.fromEnvironment([:], logger: logger) == nil)
        #expect(try ServiceManager.fromEnvironment(["NOTIFY_SOCKET": ""], logger: logger) == nil)
        #expect(try ServiceManager.address("/run/systemd/notify") == .path("/run/systemd/notify"))
        #expect(try ServiceManager.address("@/org/freedesktop/systemd1/notify") == .abstract("/org/freedesktop/systemd1/notify"))
        #expect(throws: ServiceManager.AddressError(value: "run/notify", reason: "neither an absolute path nor @ and an abstract name")) {
            try ServiceManager.address("run/notify")
        }
        let long = "/" + String(repeating: "x", count: 107)
        #expect(throws: ServiceManager.AddressError(value: long, reason: "a path longer than 107 bytes")) {
            try ServiceManager.address(long)
        }
        #expect(try ServiceManager.address(String(long.dropLast())) == .path(String(long.dropLast())))
        #expect(throws: ServiceManager.AddressError.self) { try ServiceManager.address("@" + String(repeating: "x", count: 108)) }
    }

    @Test("each notification arrives as one datagram of KEY=value lines", arguments: [NotifySocket.Kind.path, .abstract])
    func datagrams(kind: NotifySocket.Kind) throws {
        let socket = try NotifySocket(kind)
        let manager = try #require(try ServiceManager.fromEnvironment(["NOTIFY_SOCKET": socket.environmentValue], logger: Logger(label: "test")))
        #expect(manager.notify([.ready, .status("serving on 127.0.0.1:10040")]))
        #expect(socket.receive() == "READY=1\nSTATUS=serving on 127.0.0.1:10040\n")
        #expect(manager.notify([.reloading(monotonicMicroseconds: 12_345), .stopping, .watchdog]))
        #expect(socket.receive() == "RELOADING=1\nMONOTONIC_USEC=12345\nSTOPPING=1\nWATCHDOG=1\n")
    }

    @Test("a status is one line: a newline in it (from an error message) cannot start a notification of its own")
    func statusLine() throws {
        let socket = try NotifySocket()
        let manager = ServiceManager(address: .path(socket.environmentValue), logger: Logger(label: "test"))
        manager.notify([.status("reload failed: main.lua:3: unexpected symbol\nREADY=1\r\u{0}x")])
        #expect(socket.receive() == "STATUS=reload failed: main.lua:3: unexpected symbol READY=1  x\n")
        manager.notify([.status(String(repeating: "é", count: 600))])
        #expect(socket.receive() == "STATUS=" + String(repeating: "é", count: 512) + "\n")
    }

    @Test("a manager that cannot be reached is warned of once, then at debug level; nothing else fails")
    func unreachable() throws {
        let log = RecordedLog()
        let manager = ServiceManager(address: .path("/nonexistent/vrules/notify"), logger: log.logger)
        #expect(!manager.notify([.ready]))
        #expect(!manager.notify([.watchdog]))
        let entries = log.entries.withLockedValue { $0 }
        #expect(entries.map(\.0) == [.warning, .debug])
        #expect(entries.first?.1 == "cannot notify the service manager (NOTIFY_SOCKET); later failures are logged at debug level "
            + "error=sendto: No such file or directory socket=/nonexistent/vrules/notify")
    }

    @Test("a manager that stops reading loses notifications; sending never waits for it")
    func managerNotReading() throws {
        let socket = try NotifySocket()
        let log = RecordedLog()
        let manager = ServiceManager(address: .path(socket.environmentValue), logger: log.logger)
        // On a thread of its own: a send that waited would hold it, not the test.
        let sent = NIOLockedValueBox<Int?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let count = (0..<5_000).filter { _ in manager.notify([.watchdog]) }.count
            sent.withLockedValue { $0 = count }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success, "a send waited for the manager to read")
        let count = try #require(sent.withLockedValue { $0 })
        #expect(count > 0 && count < 5_000, "\(count) of 5,000 sent")
        #expect(log.entries.withLockedValue { $0.first?.1.contains("error=sendto: Resource temporarily unavailable") } == true)
        #expect(socket.receive() == "WATCHDOG=1\n")
    }

    @Test("WATCHDOG_USEC: pings at half of it, for this process only; a value that is not a number is refused")
    func watchdogInterval() throws {
        #expect(try Watchdog.interval([:]) == nil)
        #expect(try Watchdog.interval(["WATCHDOG_USEC": "30000000"]) == .seconds(15))
        #expect(try Watchdog.interval(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]) == .seconds(15))
        #expect(try Watchdog.interval(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid() + 1)"]) == nil)
        for bad in ["0", "-5", "30s", "1e6"] {
            #expect(throws: Watchdog.IntervalError(value: bad)) { try Watchdog.interval(["WATCHDOG_USEC": bad]) }
        }
    }

    @Test("the watchdog pings while every event loop takes work, and stops while one is stuck")
    func watchdogFollowsTheLoops() async throws {
        let socket = try NotifySocket()
        let manager = ServiceManager(address: .path(socket.environmentValue), logger: Logger(label: "test"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        let loops = Array(group.makeIterator())
        let watchdog = Watchdog(manager: manager, interval: .milliseconds(50), loops: loops)
        let running = Task { try await watchdog.run() }
        defer { running.cancel() }
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")

        // The second loop stuck in one job for 1.5 s: a ping already under way may still
        // arrive, then none until the loop is free again.
        let release = DispatchSemaphore(value: 0)
        loops[1].execute { release.wait() }
        try await Task.sleep(for: .milliseconds(200))
        while socket.receive(timeout: 0) != nil {}
        #expect(await socket.next(within: 1.2) == nil, "a ping while a loop was stuck")
        release.signal()
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")
    }

    @Test("a watchdog probe that does not return stops the pings until it does, and does not hold the shutdown")
    func watchdogFollowsTheProbes() async throws {
        let socket = try NotifySocket()
        let manager = ServiceManager(address: .path(socket.environmentValue), logger: Logger(label: "test"))
        // A probe held on a continuation only the test resumes: like a stuck thread, it does
        // not heed cancellation.
        let held = NIOLockedValueBox<[CheckedContinuation<Void, Never>]>([])
        let stuck = NIOLockedValueBox(false)
        let probe: @Sendable () async -> Void = {
            guard stuck.withLockedValue({ $0 }) else { return }
            await withCheckedContinuation { continuation in held.withLockedValue { $0.append(continuation) } }
        }
        func free() { for continuation in held.withLockedValue({ list in defer { list = [] }; return list }) { continuation.resume() } }
        let watchdog = Watchdog(manager: manager, interval: .milliseconds(50), loops: [], probes: [probe])
        var running = Task { try await watchdog.run() }
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")
        stuck.withLockedValue { $0 = true }
        try await Task.sleep(for: .milliseconds(200))
        while socket.receive(timeout: 0) != nil {}
        #expect(await socket.next(within: 1.2) == nil, "a ping while the probe was stuck")
        stuck.withLockedValue { $0 = false }
        free()
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")
        running.cancel()
        _ = await running.result

        // Stopping (cancelled) while the probe is stuck: the watchdog ends all the same.
        running = Task { try await watchdog.run() }
        #expect(await socket.next(within: 15) == "WATCHDOG=1\n")
        stuck.withLockedValue { $0 = true }
        // Cancelled while it waits in the probe, not in its sleep between pings.
        for _ in 0..<500 where held.withLockedValue({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!held.withLockedValue { $0.isEmpty })
        running.cancel()
        let ended = NIOLockedValueBox(false)
        let stopping = running
        Task { _ = await stopping.result; ended.withLockedValue { $0 = true } }
        for _ in 0..<500 where !ended.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(ended.withLockedValue { $0 }, "the watchdog did not end within 5 s of its cancellation")
        free()
    }

    @Test("LISTEN_FDS: sockets passed to this process only; a count that is not one is refused")
    func inheritedSocketsFromEnvironment() throws {
        #expect(try InheritedSockets.fromEnvironment([:]) == [])
        #expect(try InheritedSockets.fromEnvironment(["LISTEN_FDS": "2", "LISTEN_PID": "\(getpid() + 1)"]) == [])
        #expect(try InheritedSockets.fromEnvironment(["LISTEN_FDS": "2"]) == [])
        for bad in ["0", "x", "65", "-1"] {
            #expect(throws: InheritedSockets.Failure("LISTEN_FDS='\(bad)': not a number of descriptors from 1 to 64")) {
                try InheritedSockets.fromEnvironment(["LISTEN_FDS": bad, "LISTEN_PID": "\(getpid())"])
            }
        }
    }

    @Test("a passed descriptor must be a listening stream socket")
    func inheritedSocketKinds() throws {
        let file = open("/dev/null", O_RDONLY)
        let datagram = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let stream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { for descriptor in [file, datagram, stream, listening] { close(descriptor) } }
        #expect(listen(listening, 1) == 0)
        #expect(InheritedSockets.problem(with: file) == "is not a socket")
        #expect(InheritedSockets.problem(with: datagram) == "is not a stream socket")
        #expect(InheritedSockets.problem(with: stream) == "is not listening")
        #expect(InheritedSockets.problem(with: listening) == nil)
        #expect(InheritedSockets.problem(with: 9_999) == "is not open")
    }
}
