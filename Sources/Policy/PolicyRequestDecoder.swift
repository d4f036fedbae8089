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
        // One pass over the line in place: no copy of it, '=' found and control bytes checked together.
        enum Line { case needMore, tooLong(Int), empty, attribute(String, String), noEquals, control, notUTF8 }
        let maximum = self.limits.maximumLineLength
        let (line, consumed): (Line, Int) = buffer.withUnsafeReadableBytes { raw in
            guard let newline = raw.firstIndex(of: UInt8(ascii: "\n")) else {
                return (raw.count > maximum ? .tooLong(raw.count) : .needMore, 0)
            }
            guard newline <= maximum else { return (.tooLong(newline), 0) }
            var end = newline
            if end > 0 && raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if end == 0 { return (.empty, newline + 1) }
            var equals = -1
            for index in 0..<end {
                let byte = raw[index]
                if byte < 0x20 && byte != 0x09 || byte == 0x7f { return (.control, 0) }
                if byte == UInt8(ascii: "=") && equals < 0 { equals = index }
            }
            guard equals > 0 else { return (.noEquals, 0) }
            guard let name = String(validating: UnsafeRawBufferPointer(rebasing: raw[0..<equals]), as: UTF8.self),
                  let value = String(validating: UnsafeRawBufferPointer(rebasing: raw[(equals + 1)..<end]), as: UTF8.self) else {
                return (.notUTF8, 0)
            }
            return (.attribute(name, value), newline + 1)
        }
        switch line {
        case .needMore:
            return .needMoreData
        case .tooLong(let length):
            throw PolicyProtocolError(code: .lineTooLong, reason: "\(length) bytes")
        case .noEquals:
            throw PolicyProtocolError(code: .malformedAttribute, reason: "a line without name=value")
        case .control:
            throw PolicyProtocolError(code: .invalidBytes, reason: "control characters in an attribute")
        case .notUTF8:
            throw PolicyProtocolError(code: .invalidBytes, reason: "an attribute that is not UTF-8")
        case .empty:
            buffer.moveReaderIndex(forwardBy: consumed)
            let request = PolicyRequest(attributes: self.attributes)
            self.attributes = [:]
            self.attributes.reserveCapacity(40)
            self.count = 0
            context.fireChannelRead(Self.wrapInboundOut(request))
            return .continue
        case .attribute(let name, let value):
            buffer.moveReaderIndex(forwardBy: consumed)
            self.count += 1
            guard self.count <= self.limits.maximumAttributes else {
                throw PolicyProtocolError(code: .tooManyAttributes, reason: "more than \(self.limits.maximumAttributes)")
            }
            if self.attributes.isEmpty { self.attributes.reserveCapacity(40) }
            self.attributes[name] = value
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        // A request cut off by the end of the connection is dropped: there is no one to answer.
        return .needMoreData
    }
}
