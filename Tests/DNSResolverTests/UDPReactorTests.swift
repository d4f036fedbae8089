import DNS
import DNSTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import DNSResolver

/// The UDP reactor's own rules (docs/dns-resolver.md, "The UDP path"): every exchange ends
/// exactly once, at its deadline at the latest, whichever thread ends it and however its
/// ending races its start; no socket stays connected after its exchange, and an idle socket
/// is used again on a fresh port.
@Suite("UDP reactor: deadlines and endings", .serialized)
struct UDPReactorTests {
    let transport = DNSTransport(group: MultiThreadedEventLoopGroup.singleton)

    /// A server that answers every query at once.
    static let answering = Self.replying(after: .zero)

    /// A server that sends the same reply to every query once after each of `delays`.
    static func replying(after delays: TimeAmount...) -> DNSServerScript {
        { query, _ in
            let reply = ScriptedDNSServer.reply(to: query, answers: [a("mail.example.com", "192.0.2.25")])
            return delays.map { .send(reply, after: $0) }
        }
    }

    /// One exchange whose asker pauses `pause` between sending and marking the query sent: its
    /// result, and the CPU the process spent meanwhile. Then no socket may be left connected.
    private func exchangeWithAskerPaused(_ request: DNSExchangeRequest, to server: ScriptedDNSServer,
                                         pause microseconds: UInt32) async throws
        -> (result: Result<DNSMessage, DNSExchangeFailure>, cpuMilliseconds: Int)
    {
        UDPQueryReactor.afterSendingForTests = { usleep(microseconds) }
        defer { UDPQueryReactor.afterSendingForTests = nil }
        let before = Self.processCPUMilliseconds()
        let result = await self.exchange(request)
        let spent = Self.processCPUMilliseconds() - before
        try await Task.sleep(nanoseconds: 20_000_000)
        #expect(try udpSocketsConnected(toPort: server.address.port) == 0)
        return (result, spent)
    }

    private func request(to server: ScriptedDNSServer, within amount: TimeAmount) -> DNSExchangeRequest {
        DNSExchangeRequest(server: server.address, question: DNSWireQuestion(name: "mail.example.com", type: .a),
                           dnssecOK: false, deadline: .now() + amount)
    }

    /// `udpExchange` awaited, given up after `limit` so that a deadline never noticed fails
    /// the test (as `.cancelled`) instead of hanging it.
    private func exchange(_ request: DNSExchangeRequest, limit: TimeAmount = .seconds(5))
        async -> Result<DNSMessage, DNSExchangeFailure>
    {
        await withTaskGroup(of: Result<DNSMessage, DNSExchangeFailure>?.self) { group in
            group.addTask { await self.transport.udpExchange(request) }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(limit.nanoseconds))
                return nil
            }
            var first: Result<DNSMessage, DNSExchangeFailure>? = nil
            for await result in group {
                if let result { first = result; break }
                group.cancelAll()
            }
            group.cancelAll()
            return first ?? .failure(.cancelled)
        }
    }

    private static func isTimeout(_ result: Result<DNSMessage, DNSExchangeFailure>) -> Bool {
        if case .failure(.timeout) = result { return true }
        return false
    }

    @Test("a deadline earlier than every other one is kept, not the earliest one armed before it")
    func earlierDeadlineKept() async throws {
        try await withServers([{ _, _ in [] }]) { servers in
            let long = Task { await self.transport.udpExchange(self.request(to: servers[0], within: .seconds(30))) }
            try await Task.sleep(nanoseconds: 50_000_000)
            let (result, ms) = await elapsedMilliseconds {
                await self.exchange(self.request(to: servers[0], within: .milliseconds(150)))
            }
            #expect(Self.isTimeout(result), "\(result)")
            #expect(ms >= 140 && ms < 1000, "took \(ms) ms")
            long.cancel()
            let (cancelled, cancelMs) = await elapsedMilliseconds { await long.value }
            guard case .failure(.cancelled) = cancelled else {
                Issue.record("the long exchange ended with \(cancelled), not cancelled")
                return
            }
            #expect(cancelMs < 1000, "cancelling took \(cancelMs) ms")
        }
    }

    @Test("the timer that fired for an exchange already answered is armed again for the next one")
    func timerArmedAgainAfterStaleFiring() async throws {
        try await withServers([Self.answering, { _, _ in [] }]) { servers in
            // Answered at once: the timer stays armed for its deadline, 200 ms from now.
            let answered = await self.exchange(self.request(to: servers[0], within: .milliseconds(200)))
            #expect((try? answered.get()) != nil, "\(answered)")
            // Later than the timer: arms nothing. It must still end at its own deadline,
            // once the timer has fired for nothing and been armed again.
            let (result, ms) = await elapsedMilliseconds {
                await self.exchange(self.request(to: servers[1], within: .milliseconds(400)))
            }
            #expect(Self.isTimeout(result), "\(result)")
            #expect(ms >= 390 && ms < 1200, "took \(ms) ms")
        }
    }

    @Test("the reactor thread is named vrules-dns-udp and runs under SCHED_BATCH, so a reply does not preempt the loops")
    func reactorThreadNamedAndBatch() async throws {
        try await withServers([Self.answering]) { servers in
            guard case .success = await self.exchange(self.request(to: servers[0], within: .seconds(2))) else {
                Issue.record("the exchange failed")
                return
            }
            // The process's threads by name: the reactor is the one named vrules-dns-udp.
            let named = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { task -> Int32? in
                let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)
                return name?.trimmingCharacters(in: .whitespacesAndNewlines) == "vrules-dns-udp" ? Int32(task) : nil
            }
            #expect(named.count == 1)
            let id = try #require(named.first)
            // 3 is SCHED_BATCH (<linux/sched.h>; Glibc's module leaves it out), 0 SCHED_OTHER.
            #expect(sched_getscheduler(id) == 3)
        }
    }

    @Test("exchanges cancelled as they start end once each and leave no socket connected")
    func cancelledAsTheyStart() async throws {
        try await withServers([Self.answering]) { servers in
            let before = try Self.openDescriptors()
            let count = 2_000
            let endings = NIOLockedValueBox([Int](repeating: 0, count: count))
            let done = NIOLockedValueBox(0)
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<2 {
                    group.addTask {
                        for index in stride(from: worker, to: count, by: 2) {
                            let cancel = self.transport.udpExchange(self.request(to: servers[0], within: .seconds(1))) { _ in
                                endings.withLockedValue { $0[index] += 1 }
                                done.withLockedValue { $0 += 1 }
                            }
                            // Every other one at once, racing the reply and the registration.
                            if index % 4 < 2 { cancel() }
                        }
                    }
                }
            }
            let deadline = NIODeadline.now() + .seconds(10)
            while done.withLockedValue({ $0 }) < count && NIODeadline.now() < deadline {
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            let counts = endings.withLockedValue { $0 }
            #expect(counts.allSatisfy { $0 == 1 }, "endings other than one: \(counts.enumerated().filter { $0.1 != 1 }.prefix(5))")
            // The reactor gives a socket back after it completes the exchange, and an asker
            // still sending gives it back on its way out: allow that a moment.
            try await Task.sleep(nanoseconds: 100_000_000)
            #expect(try udpSocketsConnected(toPort: servers[0].address.port) == 0)
            let after = try Self.openDescriptors()
            #expect(after <= before + UDPQueryReactor.idleLimit, "descriptors open: \(before) before, \(after) after")
        }
    }

    @Test("an exchange answered before its asker has marked it sent: its socket is given back once, by the reactor")
    func answeredWhileSending() async throws {
        guard let reactor = UDPQueryReactor.shared else { Issue.record("no reactor"); return }
        try await withServers([Self.answering]) { servers in
            _ = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
            let before = try Self.openDescriptors()
            // Long enough for the reactor to read the reply and end the exchange first.
            UDPQueryReactor.afterSendingForTests = { usleep(20_000) }
            defer { UDPQueryReactor.afterSendingForTests = nil }
            for _ in 0..<20 {
                let result = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
                #expect((try? result.get()) != nil, "\(result)")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
            #expect(try udpSocketsConnected(toPort: servers[0].address.port) == 0)
            let after = try Self.openDescriptors()
            #expect(after <= before + 2, "descriptors open: \(before) before, \(after) after")
            // Given back once: by the reactor, which read the reply, not by the asker as well.
            let idle = reactor.idleIPv4SocketsForTests
            #expect(Set(idle).count == idle.count, "a socket idle twice: \(idle)")
        }
    }

    @Test("a datagram left on a socket whose exchange was answered while being sent does not keep the reactor busy")
    func leftoverDatagramAnsweredWhileSending() async throws {
        // The reply twice: the first ends the exchange, the second stays on the socket.
        try await withServers([Self.replying(after: .zero, .zero)]) { servers in
            _ = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
            let (result, spent) = try await self.exchangeWithAskerPaused(self.request(to: servers[0], within: .seconds(1)),
                                                                         to: servers[0], pause: 200_000)
            #expect((try? result.get()) != nil, "\(result)")
            // A reactor woken for that datagram until the socket is emptied would spend the
            // asker's whole 200 ms pause on a core.
            #expect(spent < 100, "the process spent \(spent) ms of CPU during a 200 ms pause")
        }
    }

    @Test("datagrams reaching a socket whose exchange timed out while it was being sent do not keep the reactor busy")
    func datagramsAfterTimeoutWhileSending() async throws {
        // Two replies 60 ms after the query: the exchange has timed out (30 ms) by then, but its
        // asker, paused, has not given the socket back: it is still connected.
        try await withServers([Self.replying(after: .milliseconds(60), .milliseconds(60))]) { servers in
            let (result, spent) = try await self.exchangeWithAskerPaused(
                self.request(to: servers[0], within: .milliseconds(30)), to: servers[0], pause: 300_000)
            #expect(Self.isTimeout(result), "\(result)")
            // A reactor woken for those datagrams until the asker gives the socket back would
            // spend the last 240 ms of the asker's pause on a core.
            #expect(spent < 100, "the process spent \(spent) ms of CPU during a 300 ms pause")
            let answered = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
            #expect((try? answered.get()) != nil, "the socket given back serves again: \(answered)")
        }
    }

    @Test("one socket serves query after query, each from a fresh port, and is left disconnected")
    func socketUsedAgainOnFreshPorts() async throws {
        guard let reactor = UDPQueryReactor.shared else { Issue.record("no reactor"); return }
        try await withServers([Self.answering]) { servers in
            _ = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
            let opened = reactor.socketsOpenedSoFarForTests
            for _ in 0..<200 {
                let result = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
                #expect((try? result.get()) != nil, "\(result)")
            }
            // The reactor gives a socket back before it resumes the asker (a test running
            // beside this one may take it meanwhile).
            #expect(reactor.socketsOpenedSoFarForTests - opened <= 2, "sockets opened for 200 queries in a row")
            let ports = servers[0].queries.dropFirst().map(\.sourcePort)
            // 200 ports drawn from the ephemeral range (about 28,000): a repeat or two by chance.
            #expect(Set(ports).count >= 195, "\(Set(ports).count) distinct ports among \(ports.count)")
            try await Task.sleep(nanoseconds: 50_000_000)
            #expect(try udpSocketsConnected(toPort: servers[0].address.port) == 0)
        }
    }

    @Test("replies left on a socket or coming after its exchange ended reach no idle socket and cost no CPU")
    func repliesAfterTheEnd() async throws {
        // The reply twice (the second left on the socket when the first ends the exchange), and
        // once more 100 ms later, when the socket is idle: a port released, nothing to read.
        try await withServers([Self.replying(after: .zero, .zero, .milliseconds(100))]) { servers in
            let before = Self.processCPUMilliseconds()
            for _ in 0..<3 {
                let result = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
                #expect((try? result.get()) != nil, "\(result)")
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            let spent = Self.processCPUMilliseconds() - before
            #expect(spent < 150, "the process spent \(spent) ms of CPU over 600 ms of mostly idle sockets")
        }
    }

    @Test("a query that cannot be sent ends at once as a network failure, and its socket serves the next one")
    func unsendableQuery() async throws {
        guard let reactor = UDPQueryReactor.shared else { Issue.record("no reactor"); return }
        try await withServers([Self.answering]) { servers in
            _ = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
            // The limited broadcast address: `connect` refuses it (EACCES without SO_BROADCAST).
            var unsendable = self.request(to: servers[0], within: .seconds(5))
            unsendable.server = DNSServerAddress(ip: IPAddress("255.255.255.255")!, port: 53)
            let opened = reactor.socketsOpenedSoFarForTests
            for _ in 0..<20 {
                let (result, ms) = await elapsedMilliseconds { await self.exchange(unsendable) }
                guard case .failure(.network(let reason)) = result else {
                    Issue.record("not a network failure: \(result)")
                    continue
                }
                #expect(reason.contains("cannot connect a UDP socket to 255.255.255.255"), "\(reason)")
                #expect(ms < 1000, "ended after \(ms) ms, not at once")
                let answered = await self.exchange(self.request(to: servers[0], within: .seconds(1)))
                #expect((try? answered.get()) != nil, "\(answered)")
            }
            #expect(reactor.socketsOpenedSoFarForTests - opened <= 3, "sockets opened for 40 exchanges in a row")
        }
    }

    @Test("a burst of exchanges leaves no more idle sockets than the pool keeps")
    func burstBoundedByIdleLimit() async throws {
        guard let reactor = UDPQueryReactor.shared else { Issue.record("no reactor"); return }
        try await withServers([{ _, _ in [] }]) { servers in
            let count = UDPQueryReactor.idleLimit * 2 + 50
            let done = NIOLockedValueBox(0)
            for _ in 0..<count {
                _ = self.transport.udpExchange(self.request(to: servers[0], within: .milliseconds(300))) { _ in
                    done.withLockedValue { $0 += 1 }
                }
            }
            let deadline = NIODeadline.now() + .seconds(10)
            while done.withLockedValue({ $0 }) < count && NIODeadline.now() < deadline {
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            #expect(done.withLockedValue { $0 } == count)
            try await Task.sleep(nanoseconds: 50_000_000)
            let idle = reactor.idleIPv4SocketsForTests.count
            #expect(idle <= UDPQueryReactor.idleLimit, "\(idle) idle sockets")
            #expect(try udpSocketsConnected(toPort: servers[0].address.port) == 0)
        }
    }

    /// What the service manager's watchdog waits for besides the event loops.
    @Test("the reactor's probe returns at its next pass, idle or not, and never while a pass is stuck")
    func probe() async throws {
        /// Whether the probe returned within `seconds`.
        func probed(within seconds: Double) async -> Bool {
            let returned = NIOLockedValueBox(false)
            let probing = Task { await UDPReactorProbe.run(); returned.withLockedValue { $0 = true } }
            let deadline = Date().addingTimeInterval(seconds)
            while !returned.withLockedValue({ $0 }) && Date() < deadline { try? await Task.sleep(for: .milliseconds(10)) }
            _ = probing
            return returned.withLockedValue { $0 }
        }
        #expect(await probed(within: 10), "an idle reactor")
        // A pass stuck on the reactor's thread, as a deadlock would hold it.
        let release = DispatchSemaphore(value: 0)
        let stuck = NIOLockedValueBox(true)
        UDPQueryReactor.atPassForTests = { if stuck.withLockedValue({ $0 }) { release.wait() } }
        defer { UDPQueryReactor.atPassForTests = nil }
        let waiting = Task { await UDPReactorProbe.run() }
        #expect(!(await probed(within: 1)), "a probe returned while the reactor was stuck")
        stuck.withLockedValue { $0 = false }
        release.signal()
        await waiting.value
        #expect(await probed(within: 10), "the reactor, free again")
        // Busy: the probe rides a pass that also reads replies.
        let server = try await ScriptedDNSServer.start(script: Self.answering)
        async let answer = self.exchange(self.request(to: server, within: .seconds(5)))
        #expect(await probed(within: 10), "a reactor reading replies")
        #expect((try? await answer.get()) != nil)
        await server.stop()
    }

    private static func processCPUMilliseconds() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Int(usage.ru_utime.tv_sec) * 1000 + Int(usage.ru_utime.tv_usec) / 1000
        let system = Int(usage.ru_stime.tv_sec) * 1000 + Int(usage.ru_stime.tv_usec) / 1000
        return user + system
    }

    private static func openDescriptors() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }
}
