import Logging
import Metrics
import NIOCore

/// Answers the requests of one connection, one at a time and in order, as a child task of
/// its listener's task group. Each answer is written (the write completed) before the
/// next request is read or the connection is closed, so a request followed at once by a
/// half-close or by garbage still gets its answer. A malformed request, a wrong request
/// type or one without `client_address` closes the connection without an answer, as the
/// protocol asks, and is logged and counted.
struct PolicyConnection {
    let channel: NIOAsyncChannel<PolicyRequest, ByteBuffer>
    let service: PolicyService
    let logger: Logger
    /// The shard whose engine runs on this connection's event loop, if one does.
    let shard: Int?

    init(channel: NIOAsyncChannel<PolicyRequest, ByteBuffer>, service: PolicyService, logger: Logger) {
        self.channel = channel
        self.service = service
        self.logger = logger
        self.shard = service.shard(runningOn: channel.channel.eventLoop)
    }

    func run() async {
        let channel = self.channel.channel
        let peer = channel.remoteAddress
        do {
            try await self.channel.executeThenClose { inbound, _ in
                do {
                    for try await request in inbound {
                        if let error = request.garbled {
                            Self.refused(error, peer: peer, logger: self.logger)
                            return
                        }
                        let decision = await self.service.decide(request, preferring: self.shard)
                        var buffer = channel.allocator.buffer(capacity: decision.action.utf8.count + 9)
                        buffer.writeString("action=")
                        buffer.writeString(PolicyReplyText.sanitized(decision.action))
                        buffer.writeString("\n\n")
                        try await channel.writeAndFlush(buffer)
                    }
                } catch let error as PolicyProtocolError {
                    Self.refused(error, peer: peer, logger: self.logger)
                } catch let error as ByteToMessageDecoderError {
                    Self.refused(PolicyProtocolError(code: .malformedAttribute, reason: "\(error)"), peer: peer, logger: self.logger)
                }
            }
        } catch {
            self.logger.debug("policy connection error", metadata: ["error": "\(error)", "peer": "\(peer?.description ?? "-")"])
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
    var garbled: PolicyProtocolError? {
        guard self["request"] == "smtpd_access_policy" else {
            return PolicyProtocolError(code: .unknownRequest, reason: "request=\(self["request"]?.prefix(64) ?? "")")
        }
        guard self["client_address"] != nil else {
            return PolicyProtocolError(code: .missingAttribute, reason: "no client_address")
        }
        return nil
    }
}
