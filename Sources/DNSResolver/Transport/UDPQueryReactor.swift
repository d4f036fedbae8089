import DNS
import NIOConcurrencyHelpers
import NIOCore

import CEpoll
import Glibc

/// The UDP exchanges of every resolver in the process, without a NIO channel per query:
/// one non-blocking socket per query, connected to the server (a fresh random port chosen by
/// the kernel; datagrams from other sources dropped; ICMP unreachables reported), and one
/// reactor thread that waits on all of them with `epoll` and a heap of deadlines. See
/// docs/dns-resolver.md, "The UDP path", for why and how it keeps RFC 5452's protections.
///
/// Ownership: the asker (a task, or a lookup led by callback) opens, connects and sends, then
/// registers the socket; from then on only the reactor thread reads it, closes it and
/// completes the exchange, exactly once, whatever ends it (a reply, an unreachable error, the
/// deadline, cancellation).
final class UDPQueryReactor: @unchecked Sendable {
    /// Nil only when the process could not create the reactor's epoll set, eventfd or thread
    /// (descriptors or threads exhausted): every UDP exchange then fails as a network error
    /// instead of the process stopping.
    static let shared: UDPQueryReactor? = UDPQueryReactor()

    /// One registered exchange: what a reply must match, and whom to resume.
    private struct Exchange {
        var descriptor: Int32
        var id: UInt16
        var question: DNSWireQuestion
        var server: DNSServerAddress
        var completion: @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void
    }

    /// A deadline in the heap; entries of finished exchanges are skipped when they surface.
    private struct Deadline {
        var time: NIODeadline
        var token: UInt64
    }

    private let lock = NIOLock()
    // Guarded by `lock`.
    private var exchanges: [UInt64: Exchange] = [:]
    private var deadlines: [Deadline] = []
    private var cancelled: [UInt64] = []
    private var nextToken: UInt64 = 1
    /// When the reactor sleeps in `epoll_wait`, the deadline it will wake at (`.distantFuture`
    /// for none); nil while it works. A registration with an earlier deadline wakes it.
    private var sleepingUntil: NIODeadline? = nil

    private let epoll: Int32
    private let wakeup: Int32
    /// Token 0 in the epoll set is the wake-up `eventfd`.
    private static let wakeToken: UInt64 = 0

    private init?() {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeToken
        guard epoll >= 0, wakeup >= 0, epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0 else {
            if epoll >= 0 { close(epoll) }
            if wakeup >= 0 { close(wakeup) }
            return nil
        }
        self.epoll = epoll
        self.wakeup = wakeup
        let retained = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let reactor = Unmanaged<UDPQueryReactor>.fromOpaque(argument!).takeRetainedValue()
            reactor.run()
            return nil
        }, retained.toOpaque())
        guard created == 0 else {
            retained.release()
            close(epoll)
            close(wakeup)
            return nil
        }
        pthread_detach(thread)
    }

    // MARK: - The asking side

    /// Sends `packet` to `server` on a fresh connected socket and waits for the reply that
    /// matches `id` and `question`, until `deadline`.
    func exchange(server: DNSServerAddress, id: UInt16, question: DNSWireQuestion, packet: [UInt8],
                  deadline: NIODeadline) async -> Result<DNSMessage, DNSExchangeFailure> {
        let token = self.takeToken()
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                self.start(server: server, id: id, question: question, packet: packet, deadline: deadline, token: token,
                           inTask: true) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            self.cancel(token)
        }
    }

    /// The same without a task: `completion` gets the result once, on any thread (on this one
    /// when the query cannot be sent). Returns what cancels the exchange.
    func exchange(server: DNSServerAddress, id: UInt16, question: DNSWireQuestion, packet: [UInt8],
                  deadline: NIODeadline, completion: @escaping @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void)
        -> @Sendable () -> Void
    {
        let token = self.takeToken()
        self.start(server: server, id: id, question: question, packet: packet, deadline: deadline, token: token,
                   inTask: false, completion: completion)
        return { self.cancel(token) }
    }

    private func takeToken() -> UInt64 {
        self.lock.withLock { () -> UInt64 in
            defer { self.nextToken &+= 1 }
            return self.nextToken
        }
    }

    /// Sends the query and registers the exchange; `inTask`: refused at once when the asking
    /// task is already cancelled (its cancellation handler then found nothing to cancel).
    private func start(server: DNSServerAddress, id: UInt16, question: DNSWireQuestion, packet: [UInt8],
                       deadline: NIODeadline, token: UInt64, inTask: Bool,
                       completion: @escaping @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void) {
        switch Self.openAndSend(server: server, packet: packet) {
        case .success(let descriptor):
            let exchange = Exchange(descriptor: descriptor, id: id, question: question, server: server, completion: completion)
            self.register(exchange, token: token, deadline: deadline, checkTask: inTask)
        case .failure(let failure):
            completion(.failure(failure))
        }
    }

    /// Opens a non-blocking UDP socket, connects it to `server` and sends the query.
    private static func openAndSend(server: DNSServerAddress, packet: [UInt8]) -> Result<Int32, DNSExchangeFailure> {
        let family = server.ip.isIPv4 ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            return .failure(.network("cannot open a UDP socket: \(Self.describe(errno))"))
        }
        let connected = server.withSocketAddress { address, length in connect(descriptor, address, length) }
        guard connected == 0 else {
            let code = errno
            close(descriptor)
            return .failure(.network("cannot connect a UDP socket to \(server): \(Self.describe(code))"))
        }
        let sent = packet.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == packet.count else {
            let code = errno
            close(descriptor)
            if let failure = Self.unreachable(code, server: server) { return .failure(failure) }
            return .failure(.network("cannot send to \(server): \(Self.describe(code))"))
        }
        return .success(descriptor)
    }

    private func register(_ exchange: Exchange, token: UInt64, deadline: NIODeadline, checkTask: Bool) {
        var wake = false
        var refused: Result<DNSMessage, DNSExchangeFailure>? = nil
        self.lock.withLockVoid {
            // Cancelled before it got here: the cancellation handler found nothing to cancel.
            if checkTask && Task.isCancelled {
                refused = .failure(.cancelled)
                return
            }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = token
            guard epoll_ctl(self.epoll, EPOLL_CTL_ADD, exchange.descriptor, &event) == 0 else {
                refused = .failure(.network("cannot wait for a UDP reply: \(Self.describe(errno))"))
                return
            }
            self.exchanges[token] = exchange
            self.pushDeadline(Deadline(time: deadline, token: token))
            if let sleeping = self.sleepingUntil, deadline < sleeping { wake = true }
        }
        if let refused {
            close(exchange.descriptor)
            exchange.completion(refused)
            return
        }
        if wake { self.wake() }
    }

    private func cancel(_ token: UInt64) {
        let wake = self.lock.withLock { () -> Bool in
            guard self.exchanges[token] != nil else { return false }
            self.cancelled.append(token)
            return self.sleepingUntil != nil
        }
        if wake { self.wake() }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(self.wakeup, $0.baseAddress, $0.count) }
    }

    // MARK: - The reactor thread

    private func run() {
        let capacity = 256
        var events = [epoll_event](repeating: epoll_event(), count: capacity)
        // Room for any UDP datagram: one cut short would only fail to decode and be dropped.
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let timeout = self.lock.withLock { () -> Int32 in
                // A cancellation that arrived while this thread was working (so it was not
                // woken) is handled before any sleep.
                if !self.cancelled.isEmpty {
                    self.sleepingUntil = nil
                    return 0
                }
                let next = self.earliestDeadline()
                self.sleepingUntil = next ?? .distantFuture
                guard let next else { return -1 }
                let nanoseconds = (next - .now()).nanoseconds
                if nanoseconds <= 0 { return 0 }
                // Round up: waking a little early would only spin until the deadline.
                return Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
            }
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(self.epoll, $0.baseAddress, Int32(capacity), timeout) }
            self.lock.withLockVoid { self.sleepingUntil = nil }
            if count > 0 {
                for index in 0..<Int(count) {
                    let token = events[index].data.u64
                    if token == Self.wakeToken {
                        var value: UInt64 = 0
                        _ = withUnsafeMutableBytes(of: &value) { read(self.wakeup, $0.baseAddress, $0.count) }
                    } else {
                        self.readReplies(token: token, buffer: &buffer)
                    }
                }
            }
            let cancelled = self.lock.withLock { () -> [UInt64] in
                defer { self.cancelled.removeAll(keepingCapacity: true) }
                return self.cancelled
            }
            for token in cancelled { self.finish(token, .failure(.cancelled)) }
            for token in self.expiredTokens() { self.finish(token, .failure(.timeout)) }
        }
    }

    /// Reads every datagram waiting on the exchange's socket; finishes it on a matching reply
    /// or an unreachable error, and leaves it waiting after junk.
    private func readReplies(token: UInt64, buffer: inout [UInt8]) {
        guard let exchange = self.lock.withLock({ self.exchanges[token] }) else { return }
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(exchange.descriptor, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                if let failure = Self.unreachable(code, server: exchange.server) { self.finish(token, .failure(failure)) }
                return
            }
            guard let message = try? DNSMessage(decoding: Array(buffer[0..<received])),
                  isReply(message, to: exchange.id, question: exchange.question) else { continue }
            self.finish(token, .success(message))
            return
        }
    }

    /// Ends an exchange once: forgets it, closes its socket (which also leaves the epoll
    /// set), and resumes its asker.
    private func finish(_ token: UInt64, _ result: Result<DNSMessage, DNSExchangeFailure>) {
        guard let exchange = self.lock.withLock({ self.exchanges.removeValue(forKey: token) }) else { return }
        close(exchange.descriptor)
        exchange.completion(result)
    }

    private func expiredTokens() -> [UInt64] {
        let now = NIODeadline.now()
        return self.lock.withLock {
            var expired: [UInt64] = []
            while let first = self.deadlines.first, first.time <= now {
                self.popDeadline()
                if self.exchanges[first.token] != nil { expired.append(first.token) }
            }
            return expired
        }
    }

    /// The earliest deadline of an exchange still running; entries of finished ones are dropped.
    private func earliestDeadline() -> NIODeadline? {
        while let first = self.deadlines.first {
            if self.exchanges[first.token] != nil { return first.time }
            self.popDeadline()
        }
        return nil
    }

    // MARK: - The deadline heap (guarded by `lock`)

    private func pushDeadline(_ deadline: Deadline) {
        self.deadlines.append(deadline)
        var child = self.deadlines.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.deadlines[child].time < self.deadlines[parent].time else { break }
            self.deadlines.swapAt(child, parent)
            child = parent
        }
    }

    private func popDeadline() {
        let last = self.deadlines.removeLast()
        guard !self.deadlines.isEmpty else { return }
        self.deadlines[0] = last
        var parent = 0
        let count = self.deadlines.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            var smallest = left
            if left + 1 < count && self.deadlines[left + 1].time < self.deadlines[left].time { smallest = left + 1 }
            guard self.deadlines[smallest].time < self.deadlines[parent].time else { break }
            self.deadlines.swapAt(smallest, parent)
            parent = smallest
        }
    }

    // MARK: - Errors

    /// ICMP port, host or network unreachable for a connected socket: nothing will answer.
    static func unreachable(_ code: Int32, server: DNSServerAddress) -> DNSExchangeFailure? {
        switch code {
        case ECONNREFUSED:
            return .network("\(server) refused the query (ICMP port unreachable: nothing listens there)")
        case EHOSTUNREACH, ENETUNREACH:
            return .network("\(server) is unreachable (\(Self.describe(code)))")
        default:
            return nil
        }
    }

    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
