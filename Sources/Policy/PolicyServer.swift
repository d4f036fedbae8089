import ListenAddress
import Logging
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The SMTPD policy delegation server: listeners on TCP and UNIX sockets feeding one
/// `PolicyService`. Each connection is a plain NIO pipeline (the idle timeout, then
/// `PolicyAnswerHandler`, which decodes, decides and answers): no task or async stream per
/// connection; a request is decided on the connection's loop, in a task only when a stage
/// waits for DNS.
/// Runs as a swift-service-lifecycle `Service`: on graceful shutdown it stops accepting,
/// closes its listeners, and lets every open connection answer what it has read and close.
public final class PolicyServer: Service, @unchecked Sendable {
    /// Raises the process's soft descriptor limit to its hard limit; for the server binary.
    public static func raiseDescriptorLimit() { DescriptorLimit.raiseToHardLimit() }

    /// How long stopping waits for connections to answer what they have read (a decision
    /// waiting for DNS, a peer not reading its answers) before closing them regardless.
    /// Set before `stop()` only (tests shorten it).
    var stopGrace = TimeAmount.seconds(10)

    /// What the server tells its owner (the service manager's notifications).
    public enum Event: Sendable {
        /// Every listener is bound: clients may connect.
        case listening([SocketAddress])
        /// A graceful shutdown began: no new connections.
        case stopping
    }

    public let service: PolicyService
    private let events: @Sendable (Event) -> Void
    private let addresses: [ListenAddress]
    /// Listening sockets a service manager passed (socket activation), served besides `addresses`.
    private let inherited: [Int32]
    private let limits: PolicyProtocolLimits
    private let socketAccess: UnixSocketAccess
    private let logger: Logger
    private let group: EventLoopGroup
    // Touched only by start() and stop(), which the owner does not run concurrently.
    private var listeners: [any Channel] = []
    private let connections = OpenConnections()
    private var expiry: RepeatedTask?

    public init(service: PolicyService, listen addresses: [ListenAddress], limits: PolicyProtocolLimits = PolicyProtocolLimits(),
                inherited: [Int32] = [], socketAccess: UnixSocketAccess = UnixSocketAccess(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "vrules.policy"),
                events: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.service = service
        self.events = events
        self.addresses = addresses
        self.inherited = inherited
        self.limits = limits
        self.socketAccess = socketAccess
        self.group = group
        self.logger = logger
    }

    /// The connections open now (accepted and not yet closed).
    public var openConnectionCount: Int { self.connections.count }

    /// Binds every listener; returns the bound addresses (port 0 becomes the real port).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        let connections = self.connections
        let logger = self.logger
        let service = self.service
        let limits = self.fittedLimits()
        let kept = KeptConnections(kept: Self.keptConnections(limits.maximumConnections), service: "policy",
                                    logger: logger)
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // One accept per read: the limit handler sees each before the next, so the cap is exact.
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(KeptConnections.Admission(kept))
                    try pipeline.addHandler(
                        ConnectionLimitHandler(maximum: limits.maximumConnections, connections: connections, logger: logger))
                }
            }
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            // A peer's half-close ends its requests, not the answers still owed to it.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                guard connections.add(channel) else {
                    // Accepted while the server stops.
                    return channel.close()
                }
                let activity = kept.activity(of: channel)
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(limits.idleTimeout)))
                    try pipeline.addHandler(PolicyAnswerHandler(service: service, logger: logger, limits: limits,
                                                                activity: activity))
                }
            }
        var bound: [SocketAddress] = []
        for address in self.addresses {
            let listener: any Channel
            do {
                listener = try await self.bind(address, with: bootstrap)
            } catch {
                throw PolicyListenError(address: "\(address)", reason: PolicyListenError.reason(for: error))
            }
            self.listeners.append(listener)
            if let local = listener.localAddress { bound.append(local) }
            self.logger.info("policy server listening", metadata: ["address": "\(address)"])
        }
        for descriptor in self.inherited {
            let listener: any Channel
            do {
                listener = try await bootstrap.withBoundSocket(descriptor).get()
            } catch {
                throw PolicyListenError(address: "descriptor \(descriptor) from the service manager", reason: PolicyListenError.reason(for: error))
            }
            self.listeners.append(listener)
            if let local = listener.localAddress { bound.append(local) }
            self.logger.info("policy server listening on a socket from the service manager", metadata: [
                "address": "\(listener.localAddress.map(Self.text) ?? "?")", "descriptor": "\(descriptor)",
            ])
        }
        self.startExpiry()
        return bound
    }

    private func bind(_ address: ListenAddress, with bootstrap: ServerBootstrap) async throws -> any Channel {
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await self.socketAccess.bind(path, with: bootstrap)
        }
    }

    /// An address as `--listen` takes it: `127.0.0.1:10040`, `[::1]:10040`, `unix:/path`.
    public static func text(_ address: SocketAddress) -> String {
        switch address {
        case .v4: "\(address.ipAddress ?? ""):\(address.port ?? 0)"
        case .v6: "[\(address.ipAddress ?? "")]:\(address.port ?? 0)"
        case .unixDomainSocket: "unix:\(address.pathname ?? "")"
        }
    }

    /// How many connections are kept before a new one closes the one idle the longest: a
    /// sixteenth of `max_connections` below it (at least one), so that a newcomer finds a place
    /// while the connection it evicts closes. With `max_connections = 1` nothing is evicted.
    static func keptConnections(_ maximum: Int) -> Int {
        max(1, maximum - max(1, maximum / 16))
    }

    /// The limits, with the connection cap lowered to fit the descriptor limit.
    private func fittedLimits() -> PolicyProtocolLimits {
        var limits = self.limits
        let allowed = DescriptorLimit.connectionsAllowed()
        if allowed < limits.maximumConnections {
            self.logger.notice("connection limit lowered to fit the descriptor limit", metadata: [
                "max_connections": "\(limits.maximumConnections)", "allowed": "\(allowed)",
            ])
            limits.maximumConnections = allowed
        }
        return limits
    }

    /// Expires idle transactions on a timer, so a quiet server frees them too.
    private func startExpiry() {
        guard self.expiry == nil else { return }
        let service = self.service
        let interval = TimeAmount.milliseconds(Int64(min(max(Self.expiryInterval(service) * 1000, 50), 10_000)))
        let eventLoop = self.group.next()
        self.expiry = eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
            eventLoop.makeFutureWithTask { await service.expireIdle() }
        }
    }

    /// A quarter of the transaction timeout: a transaction outlives it by at most that.
    private static func expiryInterval(_ service: PolicyService) -> Double {
        service.configurationTimeout / 4
    }

    /// Stops accepting, closes the listeners, and returns once every connection has
    /// answered what it had read and closed (or been closed after `stopGrace`).
    public func stop() async {
        self.expiry?.cancel()
        self.expiry = nil
        self.connections.stopAccepting()
        for listener in self.listeners {
            try? await listener.close()
        }
        self.listeners.removeAll()
        let open = self.connections.stopAll()
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(PolicyAnswerHandler.StopServing())
        }
        let forced = self.group.next().scheduleTask(in: self.stopGrace) {
            for channel in open { channel.close(promise: nil) }
        }
        for channel in open {
            try? await channel.closeFuture.get()
        }
        forced.cancel()
    }

    public func run() async throws {
        if self.listeners.isEmpty {
            do {
                self.events(.listening(try await self.start()))
            } catch let error as PolicyListenError {
                await self.stop()
                throw error
            } catch {
                await self.stop()
                throw PolicyListenError(address: self.addresses.map(\.description).joined(separator: ", "),
                                        reason: PolicyListenError.reason(for: error))
            }
        }
        try? await gracefulShutdown()
        self.logger.info("policy server shutting down")
        self.events(.stopping)
        await self.stop()
    }
}

/// The connections the process's descriptor limit leaves room for: its soft
/// `RLIMIT_NOFILE` less a reserve (an eighth, at least 32) for listeners, DNS sockets,
/// rule files and the event loops, so the connection cap, not `accept`, says no first.
enum DescriptorLimit {
    static func connectionsAllowed() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return Int.max }
        let soft = Int(clamping: limit.rlim_cur)
        return max(1, soft - max(32, soft / 8))
    }

    /// Raises the soft descriptor limit to the hard one (servers are allowed to; the soft
    /// default of 1,024 would cap connections well below what the host allows).
    static func raiseToHardLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// A listener that could not be bound (address in use, no permission, bad socket access).
public struct PolicyListenError: Error, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var description: String { "\(self.address): \(self.reason)" }

    /// Why an address could not be listened on, in the operator's words rather than
    /// SwiftNIO's type and function names (`bind(descriptor:ptr:bytes:)`, `UnixDomainSocketPathWrongType()`).
    public static func reason(for error: any Error) -> String {
        switch error {
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        case let error as SocketAddressError.UnknownHost:
            return "no address for \(error.host) (\(error.errorDescription))"
        case is UnixDomainSocketPathWrongType:
            return "the path exists and is not a socket"
        case let error as SocketAddressError:
            switch error {
            case .unixDomainSocketPathTooLong: return "the path is too long for a socket (\(ListenAddress.maximumUnixPathBytes) bytes at most)"
            case .unknown(let host, _): return "no address for \(host)"
            default: return "\(error)"
            }
        case let error as UnixSocketAccessError:
            return error.reason
        default:
            return "\(error)"
        }
    }
}
