import DNS
import NIOCore
import NIOPosix

/// One query sent to one server, and what a reply must match to be accepted.
struct DNSExchangeRequest: Sendable {
    var server: DNSServerAddress
    var question: DNSWireQuestion
    var dnssecOK: Bool
    var deadline: NIODeadline
}

/// A reply accepted for a request, and whether it came over TCP.
struct DNSExchangeReply: Sendable {
    var message: DNSMessage
    var server: DNSServerAddress
    var overTCP: Bool
}

/// Sends queries over UDP (`UDPQueryReactor`: a socket connected for the query, random port and
/// ID each time) and over TCP (NIO) when a reply is truncated. Knows nothing of retries, servers lists or caching.
struct DNSTransport: Sendable {
    let group: any EventLoopGroup

    /// One exchange: UDP, then TCP if the accepted UDP reply has TC set. Both share `deadline`.
    func exchange(_ request: DNSExchangeRequest) async -> Result<DNSExchangeReply, DNSExchangeFailure> {
        let udp = await self.udpExchange(request)
        switch udp {
        case .success(let message) where message.header.truncated:
            return await self.tcpExchange(request).map {
                DNSExchangeReply(message: $0, server: request.server, overTCP: true)
            }
        case .success(let message):
            return .success(DNSExchangeReply(message: message, server: request.server, overTCP: false))
        case .failure(let failure):
            return .failure(failure)
        }
    }

    static func randomID() -> UInt16 {
        QueryIDPool.shared.take()
    }

    /// What both transports send: a fresh random ID and the encoded query. Built once here so
    /// that UDP and TCP can never disagree on it.
    private struct PreparedQuery {
        var id: UInt16
        var packet: [UInt8]

        init(_ request: DNSExchangeRequest) throws(DNSExchangeFailure) {
            self.id = DNSTransport.randomID()
            do {
                // One name: nothing to compress.
                self.packet = try DNSMessage.queryPacket(id: self.id, question: request.question, dnssecOK: request.dnssecOK)
            } catch {
                throw .formerr("cannot build query: \(error)")
            }
        }
    }

    /// UDP through `UDPQueryReactor`: a socket connected to the server for this query (a fresh random port,
    /// datagrams from other sources dropped by the kernel, an ICMP unreachable known at once)
    /// and no NIO channel per query.
    func udpExchange(_ request: DNSExchangeRequest) async -> Result<DNSMessage, DNSExchangeFailure> {
        switch Self.udpQuery(request) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let (query, reactor)):
            return await reactor.exchange(server: request.server, id: query.id, question: request.question,
                                          packet: query.packet, deadline: request.deadline)
        }
    }

    /// `udpExchange` without a task: `completion` gets the result once, on any thread.
    /// Returns what cancels the exchange.
    func udpExchange(_ request: DNSExchangeRequest,
                     completion: @escaping @Sendable (Result<DNSMessage, DNSExchangeFailure>) -> Void) -> @Sendable () -> Void {
        switch Self.udpQuery(request) {
        case .failure(let failure):
            completion(.failure(failure))
            return {}
        case .success(let (query, reactor)):
            return reactor.exchange(server: request.server, id: query.id, question: request.question,
                                    packet: query.packet, deadline: request.deadline, completion: completion)
        }
    }

    /// The query to send over UDP, and the reactor to send it with.
    private static func udpQuery(_ request: DNSExchangeRequest) -> Result<(PreparedQuery, UDPQueryReactor), DNSExchangeFailure> {
        let query: PreparedQuery
        do {
            query = try PreparedQuery(request)
        } catch {
            return .failure(error)
        }
        guard let reactor = UDPQueryReactor.shared else {
            return .failure(.network("cannot start the UDP reactor (descriptors or threads exhausted)"))
        }
        return .success((query, reactor))
    }

    /// On the channel's event loop: fail the exchange at the deadline, close the channel when done.
    private static func arm(_ completion: OnceCompletion, deadline: NIODeadline, channel: any Channel) {
        channel.eventLoop.preconditionInEventLoop()
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            completion.fail(DNSExchangeFailure.timeout)
        }
        completion.promise.futureResult.whenComplete { _ in
            timer.cancel()
            channel.close(promise: nil)
        }
    }

    /// Waits for `future`, turning task cancellation into a failed exchange (which closes the
    /// channel). The one place where both transports await a reply.
    private static func result(of future: EventLoopFuture<DNSMessage>, completion: OnceCompletion)
        async -> Result<DNSMessage, DNSExchangeFailure>
    {
        let eventLoop = completion.promise.futureResult.eventLoop
        return await withTaskCancellationHandler {
            do {
                return .success(try await future.get())
            } catch let failure as DNSExchangeFailure {
                return .failure(failure)
            } catch {
                return .failure(.network("\(error)"))
            }
        } onCancel: {
            eventLoop.execute { completion.fail(DNSExchangeFailure.cancelled) }
        }
    }

    func tcpExchange(_ request: DNSExchangeRequest) async -> Result<DNSMessage, DNSExchangeFailure> {
        let query: PreparedQuery
        let remote: SocketAddress
        do {
            query = try PreparedQuery(request)
            remote = try request.server.socketAddress()
        } catch let failure as DNSExchangeFailure {
            return .failure(failure)
        } catch {
            return .failure(.formerr("cannot build query: \(error)"))
        }
        let remaining = request.deadline - .now()
        guard remaining > .zero else { return .failure(.timeout) }
        let eventLoop = self.group.next()
        let completion = OnceCompletion(promise: eventLoop.makePromise(of: DNSMessage.self))
        let handler = TCPReplyHandler(id: query.id, question: request.question, completion: completion)
        let deadline = request.deadline
        let packet = query.packet
        let reply = ClientBootstrap(group: eventLoop)
            .connectTimeout(remaining)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(to: remote)
            .flatMapError { error in
                let failure: DNSExchangeFailure
                if let channelError = error as? ChannelError, channelError == .connectTimeout(remaining) {
                    failure = .timeout
                } else if NIODeadline.now() >= deadline {
                    failure = .timeout
                } else {
                    failure = .network("TCP connection to \(request.server) failed: \(error)")
                }
                // Every promise must be completed, even when its channel never came to be.
                completion.fail(failure)
                return eventLoop.makeFailedFuture(failure)
            }
            .flatMap { channel -> EventLoopFuture<DNSMessage> in
                Self.arm(completion, deadline: deadline, channel: channel)
                if !completion.isDone {
                    var buffer = channel.allocator.buffer(capacity: packet.count + 2)
                    buffer.writeInteger(UInt16(packet.count))
                    buffer.writeBytes(packet)
                    channel.writeAndFlush(buffer, promise: nil)
                }
                return completion.promise.futureResult
            }
        return await Self.result(of: reply, completion: completion)
    }
}

/// Completes a promise at most once. Only ever touched on the promise's event loop.
final class OnceCompletion: @unchecked Sendable {
    // @unchecked: `done` is only touched on the promise's event loop.
    let promise: EventLoopPromise<DNSMessage>
    private var done = false

    init(promise: EventLoopPromise<DNSMessage>) { self.promise = promise }

    func succeed(_ message: DNSMessage) {
        self.promise.futureResult.eventLoop.preconditionInEventLoop()
        guard !self.done else { return }
        self.done = true
        self.promise.succeed(message)
    }

    func fail(_ error: any Error) {
        self.promise.futureResult.eventLoop.preconditionInEventLoop()
        guard !self.done else { return }
        self.done = true
        self.promise.fail(error)
    }

    var isDone: Bool { self.done }
}

/// Whether `message` is a reply to our query: a response, with our ID, echoing our question.
package func isReply(_ message: DNSMessage, to id: UInt16, question: DNSWireQuestion) -> Bool {
    guard message.header.isResponse, message.header.id == id, message.header.opcode == 0,
          message.questions.count == 1 else { return false }
    let echoed = message.questions[0]
    return echoed.type == question.type && echoed.recordClass == question.recordClass && echoed.name == question.name
}
