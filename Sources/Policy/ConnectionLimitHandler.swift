import Logging
#if canImport(Glibc)
import Glibc
#endif
import Metrics
import NIOCore

/// Caps the connections a listener serves at once. At the cap it stops accepting (holds
/// back the server channel's `read()`), so further clients wait in the kernel's backlog
/// instead of each costing a descriptor and a task; accepting resumes when one closes.
///
/// If `accept` fails all the same (EMFILE/ENFILE: descriptors taken by something else),
/// NIO keeps its read pending and the listener readable, and would retry at once, forever
/// (its `AcceptBackoffHandler` only delays reads that have not been issued yet). So this
/// handler turns `autoRead` off, which takes the listener out of the poll set, and back on
/// a second later.
final class ConnectionLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let maximum: Int
    private let logger: Logger
    /// What the listener serves (`policy`, `metrics`): in its metrics' names and its logs.
    private let service: String
    private let gauge: Gauge
    private let heldBack: Counter
    private let acceptFailures: Counter
    private var open = 0
    private var readHeldBack = false
    /// Accepting paused after an accept failure (`autoRead` off).
    private var paused = false
    private var autoReadOff = false
    static let pause = TimeAmount.seconds(1)

    private let connections: OpenConnections

    init(maximum: Int, connections: OpenConnections, logger: Logger, service: String = "policy") {
        self.maximum = max(1, maximum)
        self.connections = connections
        self.logger = logger
        self.service = service
        self.gauge = Gauge(label: "vrules_\(service)_connections")
        self.heldBack = Counter(label: "vrules_\(service)_connection_limit_total")
        self.acceptFailures = Counter(label: "vrules_\(service)_accept_failures_total")
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
        if self.readHeldBack && self.open < self.maximum && !self.paused && !self.connections.acceptingStopped {
            self.readHeldBack = false
            self.logger.notice("accepting \(self.service) connections again", metadata: ["open": "\(self.open)"])
            if self.autoReadOff { self.turnAutoReadOn(context: context) } else { context.read() }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode), !self.paused {
            self.paused = true
            self.acceptFailures.increment()
            self.logger.warning("cannot accept \(self.service) connections, pausing for a second", metadata: [
                "error": "\(error)", "open": "\(self.open)",
            ])
            self.autoReadOff = true
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: Self.pause) {
                let (handler, context) = loopBound.value
                handler.resume(context: context)
            }
        }
        context.fireErrorCaught(error)
    }

    private func resume(context: ChannelHandlerContext) {
        self.paused = false
        guard !self.connections.acceptingStopped else { return }
        // Turning autoRead back on issues a read of its own, past this handler: at the cap
        // that is left to the next connection to close.
        if self.open < self.maximum {
            self.readHeldBack = false
            self.turnAutoReadOn(context: context)
        } else {
            self.readHeldBack = true
        }
    }

    private func turnAutoReadOn(context: ChannelHandlerContext) {
        self.autoReadOff = false
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
    }

    func read(context: ChannelHandlerContext) {
        if self.connections.acceptingStopped { return }
        guard self.open >= self.maximum else {
            context.read()
            return
        }
        if !self.readHeldBack {
            self.readHeldBack = true
            self.heldBack.increment()
            self.logger.warning("\(self.service) connection limit reached, new connections wait", metadata: [
                "limit": "\(self.maximum)",
            ])
        }
    }
}
