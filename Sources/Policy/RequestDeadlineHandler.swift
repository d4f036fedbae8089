import NIOCore

/// Closes a connection whose request has not arrived whole `timeout` after its first byte. An
/// idle timer alone does not stop a client that trickles a request a byte at a time (each byte
/// restarts the timer) and so holds one of the few connections a listener allows. Placed first
/// in the pipeline, it sees the raw bytes; the handler that answers says a request was whole
/// with the user outbound event `RequestDeadlineHandler.RequestComplete`.
final class RequestDeadlineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct RequestComplete: Sendable {}

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.deadline == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            self.deadline = context.eventLoop.scheduleTask(in: self.timeout) {
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is RequestComplete else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        self.deadline?.cancel()
        self.deadline = nil
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
        context.fireChannelInactive()
    }
}
