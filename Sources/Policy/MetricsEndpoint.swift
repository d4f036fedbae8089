import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus registry as text on `GET /metrics`, in the policy server's process,
/// so it is held to bounds against clients that never read or never leave: `maximumConnections`
/// kept open, a new one closing the one idle the longest (`KeptConnections`; twice as many
/// at once at most, others then wait in the backlog), a connection that sends no request for
/// `idleTimeout` closed, so is one whose request is not whole `requestTimeout` after its first
/// byte, and so is one that asks again before it has read its last answer (a scraper never
/// pipelines; a client that does and never reads would otherwise keep every answer in the
/// server's memory).
public final class MetricsEndpoint: Service, @unchecked Sendable {
    public static let defaultMaximumConnections = 16
    public static let defaultIdleTimeout = TimeAmount.seconds(120)
    public static let defaultRequestTimeout = TimeAmount.seconds(10)

    // @unchecked: `channel` is set once by start() before run() and read only after it.
    private let registry: PrometheusCollectorRegistry
    private let host: String
    private let port: Int
    private let group: EventLoopGroup
    private let logger: Logger
    private let maximumConnections: Int
    private let idleTimeout: TimeAmount
    private let requestTimeout: TimeAmount
    private var channel: Channel?

    public init(registry: PrometheusCollectorRegistry, host: String, port: Int,
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "vrules.metrics"),
                maximumConnections: Int = MetricsEndpoint.defaultMaximumConnections,
                idleTimeout: TimeAmount = MetricsEndpoint.defaultIdleTimeout,
                requestTimeout: TimeAmount = MetricsEndpoint.defaultRequestTimeout) {
        self.registry = registry
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
        self.maximumConnections = maximumConnections
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
    }

    @discardableResult
    public func start() async throws -> SocketAddress? {
        let registry = self.registry
        let connections = OpenConnections()
        let kept = KeptConnections(kept: self.maximumConnections, service: "metrics", logger: self.logger)
        let logger = self.logger
        let maximumConnections = self.maximumConnections
        let idleTimeout = self.idleTimeout
        let requestTimeout = self.requestTimeout
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(KeptConnections.Admission(kept))
                    try pipeline.addHandler(ConnectionLimitHandler(
                        maximum: 2 * maximumConnections, connections: connections, logger: logger, service: "metrics"))
                }
            }
            .childChannelInitializer { channel in
                let activity = kept.activity(of: channel)
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(RequestDeadlineHandler(timeout: requestTimeout))
                    try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(MetricsHTTPHandler(registry: registry, activity: activity))
                }
            }
            .bind(host: self.host, port: self.port).get()
        self.channel = channel
        self.logger.info("metrics endpoint listening", metadata: ["address": "\(self.host):\(self.port)"])
        return channel.localAddress
    }

    /// Tests only: closes the listener (`run` does it on graceful shutdown).
    func stopForTests() {
        self.channel?.close(promise: nil)
    }

    public func run() async throws {
        if self.channel == nil { try await self.start() }
        try? await gracefulShutdown()
        try? await self.channel?.close()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: a channel handler, used only on its channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private let activity: KeptConnections.Activity
    private var path = ""

    init(registry: PrometheusCollectorRegistry, activity: KeptConnections.Activity) {
        self.registry = registry
        self.activity = activity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.path = head.uri
        case .body:
            break
        case .end:
            // Answers are waiting unread (the channel is over its high-water mark) and the
            // client asks again.
            guard context.channel.isWritable else {
                context.close(promise: nil)
                return
            }
            var body = context.channel.allocator.buffer(capacity: 4096)
            let status: HTTPResponseStatus
            if self.path == "/metrics" {
                var bytes: [UInt8] = []
                self.registry.emit(into: &bytes)
                body.writeBytes(bytes)
                status = .ok
            } else {
                body.writeString("not found\n")
                status = .notFound
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4")
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            context.triggerUserOutboundEvent(RequestDeadlineHandler.RequestComplete(), promise: nil)
            self.activity.touch()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
