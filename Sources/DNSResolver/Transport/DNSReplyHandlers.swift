import DNS
import NIOCore

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
    // @unchecked: a channel handler, used only on its channel's event loop.
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
