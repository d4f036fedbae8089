import Logging
import Metrics
import NIOCore

/// Serves one connection: decodes its requests, answers them one at a time and in order,
/// and holds reads back while they wait. Each decoded request is handed to
/// `PolicyService`, and its `action=...` line written when the decision arrives, on the
/// channel's event loop. No task or stream per connection: on the shard whose engine runs
/// on this loop, a request is decided in the read's own call unless a stage waits for DNS.
/// The requests never pass through the pipeline: a handler between the decoder and this
/// one would take each through `NIOAny`, whose cast of a request costs more than its
/// decoding.
///
/// What it guarantees:
/// - one decision in flight per connection; requests one read brought in wait in order,
///   and reads are held back meanwhile (`ReadGate`);
/// - no new decision while the channel is not writable (a peer that pipelines and never
///   reads its answers stops being read once the answers fill its socket, instead of
///   filling the server's memory);
/// - a half-close, a malformed request after valid ones, or the server stopping ends the
///   connection only after what was read is answered and written out;
/// - a request that cannot be answered (another request type, no `client_address`) or
///   malformed input closes the connection without an answer, logged and counted;
/// - a connection that sends nothing for the idle timeout (`IdleStateHandler`) is closed,
///   logged and counted; when the listener keeps as many as it may, a new connection closes
///   the one answered the longest ago, never one whose decision is running (`KeptConnections`).
final class PolicyAnswerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent through a connection's pipeline when the server stops: answer what was read,
    /// then close.
    struct StopServing: Sendable {}

    private static let dunnoAnswer = ByteBuffer(string: "action=DUNNO\n\n")

    private let service: PolicyService
    private let logger: Logger
    private let requests: NIOSingleStepByteToMessageProcessor<PolicyRequestDecoder>
    private var gate = ReadGate(readsAhead: 1)
    /// The shard whose engine runs on this channel's loop, if any.
    private var loopShard: Int?
    /// Requests read and not decided yet, in order.
    private var waiting = CircularBuffer<PolicyRequest>(initialCapacity: 4)
    /// A decision has been started and not answered yet.
    private var deciding = false
    /// No further request is taken: close once those read are answered.
    private var ending = false
    /// The close has been asked for (after the writes before it).
    private var closing = false
    /// The channel is gone: answers still to come are dropped.
    private var inactive = false

    /// When this connection was last answered (busy while a decision runs), for the
    /// listener's `KeptConnections`.
    private let activity: KeptConnections.Activity?

    init(service: PolicyService, logger: Logger, limits: PolicyProtocolLimits = PolicyProtocolLimits(),
         activity: KeptConnections.Activity? = nil) {
        self.service = service
        self.logger = logger
        self.requests = NIOSingleStepByteToMessageProcessor(PolicyRequestDecoder(limits: limits))
        self.activity = activity
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.loopShard = self.service.shard(runningOn: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a half-close or malformed input nothing more is taken.
        guard !self.ending else { return }
        do {
            try self.requests.process(buffer: Self.unwrapInboundIn(data)) { request in
                self.waiting.append(request)
                self.gate.requestTaken()
            }
        } catch {
            // The requests read before the malformed one are still answered, then the connection closes.
            let refusal = error as? PolicyProtocolError ?? PolicyProtocolError(code: .malformedAttribute, reason: "\(error)")
            Self.refused(refusal, peer: context.remoteAddress, logger: self.logger)
            self.ending = true
        }
        self.serveNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if self.gate.mayRead() { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.serveNext(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer's half-close ends its requests, not the answers still owed to it.
            self.ending = true
            self.serveNext(context: context)
        } else if event is StopServing {
            self.ending = true
            self.serveNext(context: context)
            return
        } else if event is IdleStateHandler.IdleStateEvent {
            // Nothing read for the idle timeout: closed, and said so.
            Self.refused(PolicyProtocolError(code: .idle, reason: "no request in time"), peer: context.remoteAddress, logger: self.logger)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.logger.debug("policy connection error", metadata: [
            "error": "\(error)", "peer": "\(context.remoteAddress?.description ?? "-")",
        ])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inactive = true
        self.waiting.removeAll()
        context.fireChannelInactive()
    }

    /// Starts the next waiting request's decision if none is running, or closes the
    /// connection once the last answer is written. Decisions made at once are written in
    /// this loop, not by recursion: a peer that pipelines many requests adds no stack depth.
    private func serveNext(context: ChannelHandlerContext) {
        while !self.deciding, !self.inactive, !self.closing {
            // Not writable: answers are piling up unread. The next decision waits for
            // `channelWritabilityChanged`.
            guard context.channel.isWritable else { return }
            guard let request = self.waiting.popFirst() else {
                if self.ending { self.closeAfterWrites(context: context) }
                return
            }
            if let error = request.garbled {
                Self.refused(error, peer: context.remoteAddress, logger: self.logger)
                self.ending = true
                self.waiting.removeAll()
                self.closeAfterWrites(context: context)
                return
            }
            self.deciding = true
            self.activity?.markBusy()
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let settled = self.service.decide(request, readOn: context.eventLoop, loopShard: self.loopShard) { decision in
                let (handler, context) = bound.value
                handler.answer(decision, context: context)
                handler.serveNext(context: context)
            }
            guard let settled else { return }
            self.answer(settled, context: context)
        }
    }

    /// Writes the decision's answer, and lets a read held back go; runs on the channel's loop.
    private func answer(_ decision: PolicyDecision, context: ChannelHandlerContext) {
        self.deciding = false
        self.activity?.touch()
        guard !self.inactive else { return }
        if decision.action == "DUNNO" {
            // Most answers: one shared buffer, nothing made per answer.
            context.writeAndFlush(Self.wrapOutboundOut(Self.dunnoAnswer), promise: nil)
        } else {
            let action = PolicyReplyText.sanitized(decision.action)
            var buffer = context.channel.allocator.buffer(capacity: action.utf8.count + 9)
            buffer.writeStaticString("action=")
            buffer.writeString(action)
            buffer.writeStaticString("\n\n")
            context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        }
        if self.gate.answered() { context.read() }
    }

    /// Closes once every answer written before is out: a close with writes pending would
    /// drop them. An empty write's promise completes after the writes before it.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        guard !self.closing else { return }
        self.closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }

    static func refused(_ error: PolicyProtocolError, peer: SocketAddress?, logger: Logger) {
        Counter(label: "vrules_policy_protocol_errors_total", dimensions: [("reason", error.code.rawValue)]).increment()
        logger.warning("closing policy connection", metadata: [
            "reason": "\(error)", "peer": "\(peer?.description ?? "-")",
        ])
    }
}

extension PolicyRequest {
    /// Why the request cannot be answered at all, if it cannot: another request type, or
    /// no `client_address` (Postfix always sends one; without it there is no client to
    /// judge, and guessing one would judge the wrong client).
    package var garbled: PolicyProtocolError? {
        guard self[.request] == "smtpd_access_policy" else {
            return PolicyProtocolError(code: .unknownRequest, reason: "request=\(self[.request]?.prefix(64) ?? "")")
        }
        guard self[.clientAddress] != nil else {
            return PolicyProtocolError(code: .missingAttribute, reason: "no client_address")
        }
        return nil
    }
}
