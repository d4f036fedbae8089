import Logging
import NIOCore

/// Keeps one request in flight per connection: while a request has no answer yet, the
/// channel's `read()` is held back (as NIO's `HTTPServerPipelineHandler` does), so a peer
/// that sends faster than it is answered fills its own socket buffer, not the server's
/// memory. What one read already brought in is all the server ever buffers.
///
/// With `readsAhead` 1 (the server's setting) one more read may go out while a single
/// request is unanswered: a client that waits for each answer, as Postfix does, then
/// never has its reads held and released, which costs NIO two `epoll_ctl` calls per
/// request; a client that pipelines is held back as soon as a second request is read.
final class OneRequestInFlightHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = PolicyRequest
    typealias InboundOut = PolicyRequest
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Unanswered requests that still let a `read()` through.
    private let readsAhead: Int
    /// Requests passed on and not answered yet.
    private var unanswered = 0
    /// A `read()` asked for while requests were unanswered.
    private var readHeldBack = false

    init(readsAhead: Int = 0) {
        self.readsAhead = max(0, readsAhead)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.unanswered += 1
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.unanswered = max(0, self.unanswered - 1)
        context.write(data, promise: promise)
        if self.unanswered <= self.readsAhead && self.readHeldBack {
            self.readHeldBack = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.unanswered > self.readsAhead {
            self.readHeldBack = true
        } else {
            context.read()
        }
    }
}
