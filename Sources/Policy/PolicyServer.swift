import Logging
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Where the policy server listens: `127.0.0.1:10040`, `[::1]:10040` or `unix:/path`.
public enum PolicyListenAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unix(path: path)
            return
        }
        var host: Substring
        var port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { return nil }
        self = .tcp(host: String(host), port: number)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// The SMTPD policy delegation server: listeners on TCP and UNIX sockets feeding one
/// `PolicyService`. Each listener's connections are child tasks of one task group (one
/// task per listener, none per request); each connection answers one request at a time.
/// Runs as a swift-service-lifecycle `Service`: it stops accepting and closes its
/// listeners on graceful shutdown.
public final class PolicyServer: Service, @unchecked Sendable {
    /// Raises the process's soft descriptor limit to its hard limit; for the server binary.
    public static func raiseDescriptorLimit() { DescriptorLimit.raiseToHardLimit() }

    typealias Connection = NIOAsyncChannel<PolicyRequest, ByteBuffer>
    typealias Listener = NIOAsyncChannel<Connection, Never>

    public let service: PolicyService
    private let addresses: [PolicyListenAddress]
    private let limits: PolicyProtocolLimits
    private let socketAccess: UnixSocketAccess
    private let logger: Logger
    private let group: EventLoopGroup
    // Touched only by start() and stop(), which the owner does not run concurrently.
    private var listeners: [Listener] = []
    private var acceptTasks: [Task<Void, Never>] = []
    private let connections = OpenConnections()
    private var expiry: RepeatedTask?

    public init(service: PolicyService, listen addresses: [PolicyListenAddress], limits: PolicyProtocolLimits = PolicyProtocolLimits(),
                socketAccess: UnixSocketAccess = UnixSocketAccess(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "vrules.policy")) {
        self.service = service
        self.addresses = addresses
        self.limits = limits
        self.socketAccess = socketAccess
        self.group = group
        self.logger = logger
    }

    /// Binds every listener; returns the bound addresses (port 0 becomes the real port).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        let connections = self.connections
        let logger = self.logger
        let limits = self.fittedLimits()
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionLimitHandler(maximum: limits.maximumConnections, connections: connections, logger: logger))
                }
            }
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            // A peer's half-close ends its requests, not the answers still owed to it.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        let initializer: @Sendable (Channel) -> EventLoopFuture<Connection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(limits.idleTimeout)))
                try pipeline.addHandler(ByteToMessageHandler(PolicyRequestDecoder(limits: limits)))
                try pipeline.addHandler(OneRequestInFlightHandler())
                try pipeline.addHandler(IdleConnectionCloser(logger: logger))
                let connection = try Connection(wrappingChannelSynchronously: channel, configuration: .init(
                    backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2)))
                connections.add(connection)
                return connection
            }
        }
        var bound: [SocketAddress] = []
        for address in self.addresses {
            let listener: Listener
            switch address {
            case .tcp(let host, let port):
                listener = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
            case .unix(let path) where self.socketAccess.isEmpty:
                listener = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true,
                                                    childChannelInitializer: initializer)
            case .unix(let path):
                let temporary = UnixSocketAccess.temporaryPath(for: path)
                listener = try await bootstrap.bind(unixDomainSocketPath: temporary, cleanupExistingSocketFile: true,
                                                    childChannelInitializer: initializer)
                do {
                    try self.socketAccess.apply(temporary: temporary, path: path)
                } catch {
                    try? await listener.channel.close()
                    unlink(temporary)
                    throw error
                }
            }
            self.listeners.append(listener)
            if let local = listener.channel.localAddress { bound.append(local) }
            let service = self.service
            self.acceptTasks.append(Task {
                await Self.accept(on: listener, service: service, connections: connections, logger: logger)
            })
            self.logger.info("policy server listening", metadata: ["address": "\(address)"])
        }
        self.startExpiry()
        return bound
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

    /// Serves each accepted connection as a child task until the listener closes.
    private static func accept(on listener: Listener, service: PolicyService, connections: OpenConnections, logger: Logger) async {
        do {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        guard connections.take(connection) else { continue }
                        let handler = PolicyConnection(channel: connection, service: service, logger: logger)
                        let run: @Sendable () async -> Void = {
                            await handler.run()
                            connections.remove(connection)
                        }
                        // On the connection's own event loop when an engine runs there: reading,
                        // deciding and writing then never switch threads.
                        if handler.shard != nil, #available(macOS 15, *) {
                            group.addTask(executorPreference: service.taskExecutor(for: connection.channel.eventLoop),
                                          operation: run)
                        } else {
                            group.addTask(operation: run)
                        }
                    }
                }
            }
        } catch {
            logger.debug("policy listener ended", metadata: ["error": "\(error)"])
        }
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

    public func stop() async {
        self.expiry?.cancel()
        self.expiry = nil
        self.connections.stopAccepting()
        for listener in self.listeners {
            try? await listener.channel.close()
        }
        self.listeners.removeAll()
        // Never cancelled: the loops end when their listener closes, after running every
        // connection it accepted to its close.
        self.connections.closeAll()
        for task in self.acceptTasks { await task.value }
        self.acceptTasks.removeAll()
        // Those accepted but never handed to a loop (the listener closed first) are run to
        // their close here.
        await self.connections.closeUntaken()
    }

    public func run() async throws {
        if self.listeners.isEmpty {
            do {
                try await self.start()
            } catch {
                await self.stop()
                throw PolicyListenError(reason: "\(error)")
            }
        }
        try? await gracefulShutdown()
        self.logger.info("policy server shutting down")
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
    public var reason: String
    public var description: String { self.reason }
}
