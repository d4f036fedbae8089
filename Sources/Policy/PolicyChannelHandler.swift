import Logging
import Metrics
import NIOCore

/// Answers the requests of one connection, in order. Postfix waits for each answer
/// before it sends the next request, but a peer that pipelines is served in order too.
/// A malformed request, a wrong request type or an idle connection is closed without
/// an answer, and logged.
final class PolicyChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = PolicyRequest
    typealias OutboundOut = ByteBuffer

    private let service: PolicyService
    private let logger: Logger
    private var queue: [PolicyRequest] = []
    private var busy = false
    private var context: ChannelHandlerContext?

    init(service: PolicyService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = Self.unwrapInboundIn(data)
        guard request["request"] == "smtpd_access_policy" else {
            self.refuse(context: context, PolicyProtocolError(code: .unknownRequest, reason: "request=\(request["request"] ?? "")"))
            return
        }
        self.queue.append(request)
        self.startNext()
    }

    private func startNext() {
        guard !self.busy, !self.queue.isEmpty, let context = self.context else { return }
        self.busy = true
        let request = self.queue.removeFirst()
        let eventLoop = context.eventLoop
        let service = self.service
        Task {
            let decision = await service.decide(request)
            eventLoop.execute {
                self.answer(decision)
            }
        }
    }

    private func answer(_ decision: PolicyDecision) {
        self.busy = false
        guard let context = self.context, context.channel.isActive else { return }
        var buffer = context.channel.allocator.buffer(capacity: decision.action.utf8.count + 9)
        buffer.writeString("action=")
        buffer.writeString(decision.action)
        buffer.writeString("\n\n")
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        self.startNext()
    }

    private func refuse(context: ChannelHandlerContext, _ error: PolicyProtocolError) {
        Counter(label: "vrules_policy_protocol_errors_total", dimensions: [("reason", error.code.rawValue)]).increment()
        self.logger.warning("closing policy connection", metadata: [
            "reason": "\(error)", "peer": "\(context.remoteAddress?.description ?? "-")",
        ])
        self.queue.removeAll()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? PolicyProtocolError {
            self.refuse(context: context, error)
        } else if let error = error as? ByteToMessageDecoderError {
            self.refuse(context: context, PolicyProtocolError(code: .malformedAttribute, reason: "\(error)"))
        } else {
            self.logger.debug("policy connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            self.refuse(context: context, PolicyProtocolError(code: .idle, reason: "no request in time"))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
