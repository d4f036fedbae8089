import DNS
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Accepts the first datagram that comes from the server asked, decodes, and answers our
/// query (ID and question). Everything else is counted and dropped, so that a spoofed or
/// junk packet can never end the exchange early: only a valid reply, the deadline, or the
/// kernel's word that the server cannot be reached can.
final class UDPReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let expected: SocketAddress
    private let server: DNSServerAddress
    private let id: UInt16
    private let question: DNSWireQuestion
    private let completion: OnceCompletion

    init(expected: SocketAddress, server: DNSServerAddress, id: UInt16, question: DNSWireQuestion,
         completion: OnceCompletion) {
        self.expected = expected
        self.server = server
        self.id = id
        self.question = question
        self.completion = completion
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        guard !self.completion.isDone, envelope.remoteAddress.isSameEndpoint(as: self.expected) else { return }
        var buffer = envelope.data
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        guard let message = try? DNSMessage(decoding: bytes),
              isReply(message, to: self.id, question: self.question) else { return }
        self.completion.succeed(message)
    }

    /// The socket is connected to the server, so an ICMP port, host or network unreachable
    /// for it comes back here as `ECONNREFUSED`, `EHOSTUNREACH` or `ENETUNREACH`: nothing
    /// will answer this exchange, and waiting out the timeout would only delay the next
    /// server. The kernel matches such ICMP messages to the socket's own random port and the
    /// server's address, so an off-path attacker cannot forge one more easily than a reply.
    /// Any other error says nothing about the server and is ignored.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let failure = Self.unreachable(error, server: self.server) else { return }
        self.completion.fail(failure)
    }

    /// NIO closes a datagram channel on errors it cannot recover from: the exchange is over.
    func channelInactive(context: ChannelHandlerContext) {
        self.completion.fail(DNSExchangeFailure.network("UDP socket to \(self.server) closed before a reply"))
    }

    static func unreachable(_ error: any Error, server: DNSServerAddress) -> DNSExchangeFailure? {
        guard let error = error as? IOError else { return nil }
        switch error.errnoCode {
        case ECONNREFUSED:
            return .network("\(server) refused the query (ICMP port unreachable: nothing listens there)")
        case EHOSTUNREACH, ENETUNREACH:
            return .network("\(server) is unreachable (\(String(cString: strerror(error.errnoCode))))")
        default:
            return nil
        }
    }
}

/// Splits a TCP stream into DNS messages (two-octet length prefix, RFC 1035 §4.2.2).
/// Package-visible: the scripted test server (DNSTestSupport) frames its TCP side with it too.
package struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    package init() {}

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Takes the first framed message that answers our query; a connection that closes or fails
/// before that ends the exchange with a network error.
final class TCPReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let id: UInt16
    private let question: DNSWireQuestion
    private let completion: OnceCompletion

    init(id: UInt16, question: DNSWireQuestion, completion: OnceCompletion) {
        self.id = id
        self.question = question
        self.completion = completion
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        guard let message = try? DNSMessage(decoding: bytes),
              isReply(message, to: self.id, question: self.question) else { return }
        self.completion.succeed(message)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.completion.fail(DNSExchangeFailure.network("TCP connection closed before a reply"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.completion.fail(DNSExchangeFailure.network("TCP: \(error)"))
        context.close(promise: nil)
    }
}
