import Logging
import Metrics
import NIOCore

/// Caps the connections a listener serves at once. At the cap it stops accepting (holds
/// back the server channel's `read()`), so further clients wait in the kernel's backlog
/// instead of each costing a descriptor and a task; accepting resumes when one closes.
/// (At the descriptor limit, `accept` failing with EMFILE, NIO's `AcceptBackoffHandler`,
/// which the server's bootstrap installs, pauses accepting for a second instead of
/// spinning.)
final class ConnectionLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let maximum: Int
    private let logger: Logger
    private let gauge = Gauge(label: "vrules_policy_connections")
    private let heldBack = Counter(label: "vrules_policy_connection_limit_total")
    private var open = 0
    private var readHeldBack = false

    init(maximum: Int, logger: Logger) {
        self.maximum = max(1, maximum)
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = Self.unwrapInboundIn(data)
        self.open += 1
        self.gauge.record(self.open)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        child.closeFuture.whenComplete { _ in
            eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.closed(context: context)
            }
        }
        context.fireChannelRead(data)
    }

    private func closed(context: ChannelHandlerContext) {
        self.open -= 1
        self.gauge.record(self.open)
        if self.readHeldBack && self.open < self.maximum {
            self.readHeldBack = false
            self.logger.notice("accepting policy connections again", metadata: ["open": "\(self.open)"])
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        guard self.open >= self.maximum else {
            context.read()
            return
        }
        if !self.readHeldBack {
            self.readHeldBack = true
            self.heldBack.increment()
            self.logger.warning("policy connection limit reached, new connections wait", metadata: [
                "limit": "\(self.maximum)",
            ])
        }
    }
}
