import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus registry as text on `GET /metrics`.
public final class MetricsEndpoint: Service, @unchecked Sendable {
    // @unchecked: `channel` is set once by start() before run() and read only after it.
    private let registry: PrometheusCollectorRegistry
    private let host: String
    private let port: Int
    private let group: EventLoopGroup
    private let logger: Logger
    private var channel: Channel?

    public init(registry: PrometheusCollectorRegistry, host: String, port: Int,
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "vrules.metrics")) {
        self.registry = registry
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
    }

    @discardableResult
    public func start() async throws -> SocketAddress? {
        let registry = self.registry
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHTTPHandler(registry: registry))
                }
            }
            .bind(host: self.host, port: self.port).get()
        self.channel = channel
        self.logger.info("metrics endpoint listening", metadata: ["address": "\(self.host):\(self.port)"])
        return channel.localAddress
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
    private var path = ""

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.path = head.uri
        case .body:
            break
        case .end:
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
        }
    }
}
