import DNS
import NIOConcurrencyHelpers
import NIOCore

import CEpoll
import Glibc

/// The UDP exchanges of every resolver in the process, without a NIO channel per query:
/// each query on a non-blocking socket connected to the server for that query alone (a fresh
/// random port chosen by the kernel; datagrams from other sources dropped; ICMP unreachables
/// reported), and one reactor thread that waits on all of them with `epoll`, and on their
/// deadlines with a heap and a `timerfd`. See docs/dns-resolver.md, "The UDP path", for why
/// and how it keeps RFC 5452's protections.
///
/// Sockets are kept for the next query rather than closed: once its exchange has ended, a
/// socket is disconnected (`connect` with `AF_UNSPEC`, which releases its port, so that the
/// next `connect` binds a new random one), emptied, and put in an idle pool, still in the
/// epoll set. A disconnected socket has no port and receives nothing, so an idle one never
/// wakes the reactor. This spares each query a `socket`, an `epoll_ctl` and a `close`.
///
/// Ownership: the asker (a task, or a lookup led by callback) takes an idle socket (or opens
/// one and adds it to the epoll set), records the exchange under the lock, then connects and
/// sends outside it; from then on only the reactor thread reads the socket and completes the
/// exchange, exactly once, whatever ends it (a reply, an unreachable error, the deadline,
/// cancellation). Whoever is last to hold the socket gives it back: the reactor, or the asker
/// when the exchange ended while it was still sending, so that no socket is connected or
/// handed out again while its asker still uses it.
final class UDPQueryReactor: @unchecked Sendable {
    /// Nil only when the process could not create the reactor's epoll set, eventfd, timerfd or
    /// thread (descriptors or threads exhausted): every UDP exchange then fails as a network
    /// error instead of the process stopping.
    static let shared: UDPQueryReactor? = UDPQueryReactor()

    /// One registered exchange: what a reply must match, and whom to resume.
    private struct Exchange {
        var descriptor: Int32
        var id: UInt16
        var question: DNSWireQuestion
        var server: DNSServerAddress
        var completion: @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void
        /// True from when the exchange is recorded until its asker has connected the socket and
        /// sent the query: an exchange that ends meanwhile leaves its socket to the asker to
        /// give back.
        var sending = true
    }

    /// A deadline in the heap; entries of finished exchanges are skipped when they surface.
    private struct Deadline {
        var time: NIODeadline
        var token: UInt64
    }

    private let lock = NIOLock()
    // Guarded by `lock`.
    private var exchanges: [UInt64: Exchange] = [:]
    /// The exchange each socket in use serves, by descriptor: what the epoll set reports.
    private var owners: [Int32: UInt64] = [:]
    /// Idle sockets, disconnected and empty, by `Family.rawValue`.
    private var idle: [[Int32]] = [[], []]
    private var deadlines: [Deadline] = []
    /// Exchanges answered before their asker had marked them sent, their sockets given back by
    /// the reactor: until each asker has seen its own, which it then leaves alone.
    private var answeredWhileSending: Set<UInt64> = []
    /// Exchanges to end at the reactor's next pass: cancelled, or their query not sent.
    private var endings: [(token: UInt64, failure: DNSExchangeFailure)] = []
    /// Called at the reactor's next pass (`probe`).
    private var probes: [@Sendable () -> Void] = []
    /// Exchange tokens are a counter, never reused; they name exchanges, not sockets.
    private var nextToken: UInt64 = 0
    /// When the timerfd fires next (`.distantFuture`: disarmed). Never later than the earliest
    /// deadline of an exchange still running; it may be earlier (that of one that ended), and
    /// then fires for nothing once. So an asker whose deadline is not the earliest (the common
    /// case: one resolver's queries share one timeout) arms nothing and wakes nobody.
    private var timerDeadline: NIODeadline = .distantFuture

    private let epoll: Int32
    private let wakeup: Int32
    private let timer: Int32
    /// Tokens 0 and 1 in the epoll set are the wake-up `eventfd` and the deadline `timerfd`;
    /// a socket's is its descriptor plus `socketTokenBase` (a daemon may have closed its
    /// standard input, and then a socket can be descriptor 0).
    private static let wakeToken: UInt64 = 0
    private static let timerToken: UInt64 = 1
    private static let socketTokenBase: UInt64 = 2
    /// Idle sockets kept per address family; more than this (after a burst) are closed.
    static let idleLimit = 128

    /// The address family of a server, which a socket keeps from one query to the next.
    private enum Family: Int {
        case ipv4 = 0, ipv6 = 1

        init(_ server: DNSServerAddress) { self = server.ip.isIPv4 ? .ipv4 : .ipv6 }

        var domain: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }
    }

    private init?() {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        let timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        func watch(_ descriptor: Int32, as token: UInt64) -> Bool {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = token
            return epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0
        }
        guard epoll >= 0, wakeup >= 0, timer >= 0, watch(wakeup, as: Self.wakeToken), watch(timer, as: Self.timerToken) else {
            for descriptor in [epoll, wakeup, timer] where descriptor >= 0 { close(descriptor) }
            return nil
        }
        self.epoll = epoll
        self.wakeup = wakeup
        self.timer = timer
        let retained = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let reactor = Unmanaged<UDPQueryReactor>.fromOpaque(argument!).takeRetainedValue()
            reactor.run()
            return nil
        }, retained.toOpaque())
        guard created == 0 else {
            retained.release()
            for descriptor in [epoll, wakeup, timer] { close(descriptor) }
            return nil
        }
        pthread_detach(thread)
    }

    // MARK: - The asking side

    /// Sends `packet` to `server` from a fresh random port and waits for the reply that
    /// matches `id` and `question`, until `deadline`.
    func exchange(server: DNSServerAddress, id: UInt16, question: DNSWireQuestion, packet: [UInt8],
                  deadline: NIODeadline) async -> Result<DNSMessage, DNSExchangeFailure> {
        // Taken first: the cancellation handler may run before the exchange is recorded.
        let token = self.lock.withLock { self.takeToken() }
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
        guard let token = self.start(server: server, id: id, question: question, packet: packet, deadline: deadline,
                                     token: nil, inTask: false, completion: completion) else { return {} }
        return { self.cancel(token) }
    }

    /// Guarded by `lock`.
    private func takeToken() -> UInt64 {
        defer { self.nextToken &+= 1 }
        return self.nextToken
    }

    /// Records the exchange under `token` (a new one when nil) on an idle or new socket, then
    /// connects it and sends the query; returns the token, or nil when the exchange ended at
    /// once (`completion` then had its result). `inTask`: refused at once when the asking task
    /// is already cancelled (its cancellation handler then found nothing to cancel).
    @discardableResult
    private func start(server: DNSServerAddress, id: UInt16, question: DNSWireQuestion, packet: [UInt8],
                       deadline: NIODeadline, token: UInt64?, inTask: Bool,
                       completion: @escaping @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void) -> UInt64? {
        let family = Family(server)
        var opened: Int32? = nil
        var recorded: (token: UInt64, descriptor: Int32)? = nil
        while recorded == nil {
            let outcome = self.lock.withLock { () -> Recording in
                // Cancelled before it got here: the cancellation handler found nothing to cancel.
                if inTask && Task.isCancelled { return .refused }
                guard let descriptor = opened ?? self.idle[family.rawValue].popLast() else { return .needsSocket }
                #if DEBUG
                if opened != nil { self.socketsOpenedForTests += 1 }
                #endif
                let token = token ?? self.takeToken()
                self.exchanges[token] = Exchange(descriptor: descriptor, id: id, question: question, server: server,
                                                 completion: completion)
                self.owners[descriptor] = token
                self.pushDeadline(Deadline(time: deadline, token: token))
                if deadline < self.timerDeadline { self.armTimer(for: deadline) }
                return .recorded(token, descriptor)
            }
            switch outcome {
            case .recorded(let token, let descriptor):
                recorded = (token, descriptor)
            case .needsSocket:
                switch self.openSocket(family: family) {
                case .success(let descriptor): opened = descriptor
                case .failure(let failure): completion(.failure(failure)); return nil
                }
            case .refused:
                if let opened { self.giveBack(opened, family: family, watched: true) }
                completion(.failure(.cancelled))
                return nil
            }
        }
        let (token, descriptor) = recorded!
        let failure = Self.connectAndSend(descriptor, server: server, packet: packet)
        #if DEBUG
        Self.afterSendingForTests?()
        #endif
        // Ended while being sent (cancelled, timed out, or answered by an error): the socket
        // is the asker's to give back, and the reactor stopped watching it; unless a reply
        // ended it, proof that the query had left, and the reactor gave it back at once. A
        // query that could not be sent is ended by the reactor, like a cancellation: it may be
        // reading the socket.
        let ended = self.lock.withLock { () -> Bool in
            guard self.exchanges[token] != nil else { return self.answeredWhileSending.remove(token) == nil }
            self.exchanges[token]!.sending = false
            if let failure { self.endings.append((token, failure)) }
            return false
        }
        if ended {
            self.giveBack(descriptor, family: family, watched: false)
        } else if failure != nil {
            Self.signal(self.wakeup)
        }
        return token
    }

    private enum Recording {
        case recorded(UInt64, Int32)
        case needsSocket
        case refused
    }

    /// A new non-blocking UDP socket, unconnected, in the epoll set.
    private func openSocket(family: Family) -> Result<Int32, DNSExchangeFailure> {
        let descriptor = socket(family.domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            return .failure(.network("cannot open a UDP socket: \(Self.describe(errno))"))
        }
        guard self.watch(descriptor, operation: EPOLL_CTL_ADD, events: EPOLLIN.rawValue) else {
            let code = errno
            close(descriptor)
            return .failure(.network("cannot wait for a UDP reply: \(Self.describe(code))"))
        }
        return .success(descriptor)
    }

    private func watch(_ descriptor: Int32, operation: Int32, events: UInt32) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(descriptor) + Self.socketTokenBase
        return epoll_ctl(self.epoll, operation, descriptor, &event) == 0
    }

    /// Connects the socket to `server` (which binds it to a fresh random port) and sends the
    /// query; nil when sent.
    private static func connectAndSend(_ descriptor: Int32, server: DNSServerAddress, packet: [UInt8]) -> DNSExchangeFailure? {
        let connected = server.withSocketAddress { address, length in connect(descriptor, address, length) }
        guard connected == 0 else {
            return .network("cannot connect a UDP socket to \(server): \(Self.describe(errno))")
        }
        let sent = packet.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == packet.count else {
            let code = errno
            if let failure = Self.unreachable(code, server: server) { return failure }
            return .network("cannot send to \(server): \(Self.describe(code))")
        }
        return nil
    }

    /// Disconnects a socket no exchange uses any more (its port released), empties it, and
    /// puts it in the idle pool, or closes it when that is full or it cannot be emptied.
    /// `watched`: the epoll set still reports it; otherwise it is watched again first.
    private func giveBack(_ descriptor: Int32, family: Family, watched: Bool) {
        var reusable = Self.disconnectAndEmpty(descriptor)
        if reusable && !watched {
            reusable = self.watch(descriptor, operation: EPOLL_CTL_MOD, events: EPOLLIN.rawValue)
        }
        let kept = reusable && self.lock.withLock { self.keepIdle(descriptor, family: family) }
        if !kept { close(descriptor) }
    }

    /// Guarded by `lock`: puts a disconnected, empty socket in the idle pool; false when that
    /// is full (the caller then closes it).
    private func keepIdle(_ descriptor: Int32, family: Family) -> Bool {
        guard self.idle[family.rawValue].count < Self.idleLimit else { return false }
        self.idle[family.rawValue].append(descriptor)
        return true
    }

    /// Disconnects a socket (which releases its port) and empties it; false when it cannot be
    /// used again.
    private static func disconnectAndEmpty(_ descriptor: Int32) -> Bool {
        var unspecified = sockaddr()
        unspecified.sa_family = sa_family_t(AF_UNSPEC)
        return connect(descriptor, &unspecified, socklen_t(MemoryLayout<sockaddr>.size)) == 0 && Self.empty(descriptor)
    }

    /// Discards every datagram and pending error left on a disconnected socket (which can
    /// receive nothing new); false if it does not come empty.
    private static func empty(_ descriptor: Int32) -> Bool {
        var octet: UInt8 = 0
        for _ in 0..<64 {
            if recv(descriptor, &octet, 1, Int32(MSG_DONTWAIT)) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return true
            }
        }
        return false
    }

    private func cancel(_ token: UInt64) {
        let found = self.lock.withLock { () -> Bool in
            guard self.exchanges[token] != nil else { return false }
            self.endings.append((token, .cancelled))
            return true
        }
        if found { Self.signal(self.wakeup) }
    }

    /// Guarded by `lock`: the timerfd fires at `deadline` (its first expiration, relative to
    /// now: the heap's clock need not be the timerfd's), or never for `.distantFuture`.
    private func armTimer(for deadline: NIODeadline) {
        self.timerDeadline = deadline
        var setting = itimerspec()
        if deadline != .distantFuture {
            // At least a nanosecond: an all-zero setting disarms.
            let nanoseconds = max(1, (deadline - .now()).nanoseconds)
            setting.it_value.tv_sec = Int(nanoseconds / 1_000_000_000)
            setting.it_value.tv_nsec = Int(nanoseconds % 1_000_000_000)
        }
        timerfd_settime(self.timer, 0, &setting, nil)
    }

    #if DEBUG
    /// Tests only: runs between sending a query and marking it sent, the moment an exchange
    /// can end before its asker is done with its socket.
    nonisolated(unsafe) static var afterSendingForTests: (@Sendable () -> Void)?
    /// Tests only: runs on the reactor's thread at the start of each pass (a test holds the
    /// reactor there, as a deadlock would).
    nonisolated(unsafe) static var atPassForTests: (@Sendable () -> Void)?
    /// Tests only: the idle sockets kept now for IPv4 servers.
    var idleIPv4SocketsForTests: [Int32] { self.lock.withLock { self.idle[Family.ipv4.rawValue] } }
    /// Tests only: the sockets opened for exchanges so far (guarded by `lock`).
    private var socketsOpenedForTests = 0
    var socketsOpenedSoFarForTests: Int { self.lock.withLock { self.socketsOpenedForTests } }
    #endif

    private static func signal(_ eventDescriptor: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(eventDescriptor, $0.baseAddress, $0.count) }
    }

    private static func drain(_ descriptor: Int32) {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { read(descriptor, $0.baseAddress, $0.count) }
    }

    // MARK: - The reactor thread

    /// What one pass of the reactor found ready, taken under one lock.
    private struct Pass {
        var ready: [(token: UInt64, exchange: Exchange)] = []
        var endings: [(token: UInt64, failure: DNSExchangeFailure)] = []
        var expired: [UInt64] = []
        var probes: [@Sendable () -> Void] = []
    }

    /// Calls `done` on the reactor's thread at its next pass: a reactor stuck in a pass (a
    /// deadlock, a loop) never calls it, which is what a watchdog asks.
    func probe(_ done: @escaping @Sendable () -> Void) {
        self.lock.withLockVoid { self.probes.append(done) }
        Self.signal(self.wakeup)
    }

    /// Names the thread (`top -H`, `/proc/PID/task/*/comm`) and lets it wait its turn.
    ///
    /// Under SCHED_BATCH a reply that wakes the reactor no longer preempts the event loop
    /// running on the same CPU: the reactor runs when the loop sleeps or its slice ends, and
    /// then reads every reply that came meanwhile, so the two threads switch once per batch
    /// instead of once per reply. With a CPU to spare it runs at once, as before; under
    /// load it keeps its fair share, so a reply waits at most a scheduler slice (milliseconds,
    /// against timeouts of seconds). Measured with the SPF benchmark's server on one CPU
    /// (docs/benchmarks.md, "tenth stop"). A failure (a seccomp filter) leaves the default
    /// policy, which only costs the switches.
    private func prepareThread() {
        _ = vrules_thread_set_name("vrules-dns-udp")
        _ = vrules_thread_schedule_batch()
    }

    private func run() {
        self.prepareThread()
        let capacity = 256
        var events = [epoll_event](repeating: epoll_event(), count: capacity)
        // Room for any UDP datagram: one cut short would only fail to decode and be dropped.
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var pass = Pass()
        while true {
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(self.epoll, $0.baseAddress, Int32(capacity), -1) }
            guard count > 0 else { continue }
            #if DEBUG
            Self.atPassForTests?()
            #endif
            var timerFired = false
            for index in 0..<Int(count) {
                switch events[index].data.u64 {
                case Self.wakeToken: Self.drain(self.wakeup)
                case Self.timerToken: Self.drain(self.timer); timerFired = true
                default: break
                }
            }
            self.lock.withLockVoid {
                for index in 0..<Int(count) {
                    let socketToken = events[index].data.u64
                    guard socketToken >= Self.socketTokenBase,
                          let token = self.owners[Int32(truncatingIfNeeded: socketToken - Self.socketTokenBase)],
                          let exchange = self.exchanges[token] else { continue }
                    pass.ready.append((token, exchange))
                }
                swap(&pass.endings, &self.endings)
                swap(&pass.probes, &self.probes)
                if timerFired {
                    self.takeExpired(into: &pass.expired)
                } else {
                    // Keeps the heap as small as the exchanges running: those that ended leave
                    // their entries behind.
                    _ = self.earliestDeadline()
                }
            }
            for (token, exchange) in pass.ready { self.readReplies(token: token, exchange: exchange, buffer: &buffer) }
            for (token, failure) in pass.endings { self.finish(token, .failure(failure)) }
            for token in pass.expired { self.finish(token, .failure(.timeout)) }
            for done in pass.probes { done() }
            pass.probes.removeAll(keepingCapacity: true)
            pass.ready.removeAll(keepingCapacity: true)
            pass.endings.removeAll(keepingCapacity: true)
            pass.expired.removeAll(keepingCapacity: true)
        }
    }

    /// Guarded by `lock`: the exchanges whose deadline has passed, and the timer armed for the
    /// earliest one left.
    private func takeExpired(into expired: inout [UInt64]) {
        let now = NIODeadline.now()
        while let first = self.deadlines.first, first.time <= now {
            self.popDeadline()
            if self.exchanges[first.token] != nil { expired.append(first.token) }
        }
        self.armTimer(for: self.earliestDeadline() ?? .distantFuture)
    }

    /// Reads every datagram waiting on the exchange's socket; finishes it on a matching reply
    /// or an unreachable error, and leaves it waiting after junk.
    private func readReplies(token: UInt64, exchange: Exchange, buffer: inout [UInt8]) {
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
            self.finishAnswered(token, exchange, message)
            return
        }
    }

    /// Ends an exchange once, on an error, its deadline or a cancellation: forgets it, gives its
    /// socket back (unless its asker is still sending on it), and resumes its asker.
    private func finish(_ token: UInt64, _ result: Result<DNSMessage, DNSExchangeFailure>) {
        let ended = self.lock.withLock { () -> Exchange? in
            guard let exchange = self.exchanges.removeValue(forKey: token) else { return nil }
            self.owners[exchange.descriptor] = nil
            // Its asker gives the socket back once it has sent; until then a datagram left on
            // it must not wake the reactor again and again. Under the lock: the asker cannot
            // have given it back yet, so the descriptor is still this exchange's socket.
            if exchange.sending { _ = self.watch(exchange.descriptor, operation: EPOLL_CTL_MOD, events: 0) }
            return exchange
        }
        guard let exchange = ended else { return }
        if !exchange.sending {
            self.giveBack(exchange.descriptor, family: Family(exchange.server), watched: true)
        }
        exchange.completion(result)
    }

    /// Ends an exchange on its reply, read in this pass. Only the reactor ends exchanges, and
    /// this one was running when the pass began, so it still is: its socket is disconnected and
    /// emptied before the lock, and given back under the same lock that forgets the exchange.
    /// A reply proves that the query has left: on loopback it often comes before the asker has
    /// marked it sent, and the asker no longer touches the socket but to give it back, which a
    /// note tells it not to do.
    private func finishAnswered(_ token: UInt64, _ exchange: Exchange, _ message: DNSMessage) {
        let family = Family(exchange.server)
        let reusable = Self.disconnectAndEmpty(exchange.descriptor)
        let kept = self.lock.withLock { () -> Bool in
            if self.exchanges.removeValue(forKey: token)?.sending == true { self.answeredWhileSending.insert(token) }
            self.owners[exchange.descriptor] = nil
            return reusable && self.keepIdle(exchange.descriptor, family: family)
        }
        if !kept { close(exchange.descriptor) }
        exchange.completion(.success(message))
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
