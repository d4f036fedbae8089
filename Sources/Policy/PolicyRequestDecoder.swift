import NIOCore

/// Splits the byte stream into requests: `name=value` lines ended by an empty line.
/// Every read is bounded: a line longer than the limit, too many attributes, a line
/// without `=`, a NUL or other control byte, or invalid UTF-8 is an error.
public struct PolicyRequestDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    private let limits: PolicyProtocolLimits
    private var attributes: [String: String] = [:]
    private var count = 0

    public init(limits: PolicyProtocolLimits = PolicyProtocolLimits()) {
        self.limits = limits
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > self.limits.maximumLineLength {
                throw PolicyProtocolError(code: .lineTooLong, reason: "no end of line within \(self.limits.maximumLineLength) bytes")
            }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        guard length <= self.limits.maximumLineLength else {
            throw PolicyProtocolError(code: .lineTooLong, reason: "\(length) bytes")
        }
        var line = buffer.readBytes(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }

        if line.isEmpty {
            let request = PolicyRequest(attributes: self.attributes)
            self.attributes = [:]
            self.count = 0
            context.fireChannelRead(Self.wrapInboundOut(request))
            return .continue
        }
        guard let equals = line.firstIndex(of: UInt8(ascii: "=")), equals > 0 else {
            throw PolicyProtocolError(code: .malformedAttribute, reason: "a line without name=value")
        }
        guard !line.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7f }) else {
            throw PolicyProtocolError(code: .invalidBytes, reason: "control characters in an attribute")
        }
        guard let name = String(validating: line[..<equals], as: UTF8.self),
              let value = String(validating: line[(equals + 1)...], as: UTF8.self) else {
            throw PolicyProtocolError(code: .invalidBytes, reason: "an attribute that is not UTF-8")
        }
        self.count += 1
        guard self.count <= self.limits.maximumAttributes else {
            throw PolicyProtocolError(code: .tooManyAttributes, reason: "more than \(self.limits.maximumAttributes)")
        }
        self.attributes[name] = value
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        // A request cut off by the end of the connection is dropped: there is no one to answer.
        return .needMoreData
    }
}
