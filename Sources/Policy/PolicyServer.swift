import Logging
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
/// `PolicyService`. Runs as a swift-service-lifecycle `Service`: it stops accepting and
/// closes its listeners on graceful shutdown.
public final class PolicyServer: Service, @unchecked Sendable {
    public let service: PolicyService
    private let addresses: [PolicyListenAddress]
    private let limits: PolicyProtocolLimits
    private let logger: Logger
    private let group: EventLoopGroup
    private var channels: [Channel] = []

    public init(service: PolicyService, listen addresses: [PolicyListenAddress], limits: PolicyProtocolLimits = PolicyProtocolLimits(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "vrules.policy")) {
        self.service = service
        self.addresses = addresses
        self.limits = limits
        self.group = group
        self.logger = logger
    }

    /// Binds every listener; returns the bound addresses (port 0 becomes the real port).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        let service = self.service
        let limits = self.limits
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .seconds(limits.idleTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(PolicyRequestDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(PolicyChannelHandler(service: service, logger: logger))
                }
            }
        var bound: [SocketAddress] = []
        for address in self.addresses {
            let channel: Channel
            switch address {
            case .tcp(let host, let port):
                channel = try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path):
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            }
            self.channels.append(channel)
            if let local = channel.localAddress { bound.append(local) }
            self.logger.info("policy server listening", metadata: ["address": "\(address)"])
        }
        return bound
    }

    public func stop() async {
        for channel in self.channels {
            try? await channel.close()
        }
        self.channels.removeAll()
    }

    public func run() async throws {
        if self.channels.isEmpty { try await self.start() }
        try? await gracefulShutdown()
        self.logger.info("policy server shutting down")
        await self.stop()
    }
}
