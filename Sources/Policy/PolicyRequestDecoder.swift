import NIOCore

/// Splits the byte stream into requests: `name=value` lines ended by an empty line.
/// Every read is bounded: a line longer than the limit, too many attributes, a line
/// without `=`, a NUL or other control byte, or invalid UTF-8 is an error.
public struct PolicyRequestDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    private let limits: PolicyProtocolLimits
    /// The request read so far, when a read ended inside it.
    private var pending: PolicyRequest?
    private var count = 0

    public init(limits: PolicyProtocolLimits = PolicyProtocolLimits()) {
        self.limits = limits
    }

    /// What one pass over the readable bytes found.
    private enum Scan {
        case needMore
        case request
        case failure(PolicyProtocolError)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        // One pass over every complete line in place, up to the end of one request: no copy of
        // a line, '=' found and control bytes checked together, and the strings made without
        // a second validation pass when the line is ASCII (what Postfix sends).
        let maximum = self.limits.maximumLineLength
        let maximumAttributes = self.limits.maximumAttributes
        var request = self.pending ?? PolicyRequest()
        var count = self.count
        self.pending = nil
        let (scan, consumed): (Scan, Int) = buffer.withUnsafeReadableBytes { raw in
            var start = 0
            while true {
                let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                guard let found = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                    if rest.count > maximum {
                        return (.failure(PolicyProtocolError(code: .lineTooLong, reason: "\(rest.count) bytes")), start)
                    }
                    return (.needMore, start)
                }
                guard found <= maximum else {
                    return (.failure(PolicyProtocolError(code: .lineTooLong, reason: "\(found) bytes")), start)
                }
                var end = found
                if end > 0 && rest[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end == 0 { return (.request, start + found + 1) }
                var equals = -1
                var highBits: UInt8 = 0
                for index in 0..<end {
                    let byte = rest[index]
                    if byte < 0x20 && byte != 0x09 || byte == 0x7f {
                        return (.failure(PolicyProtocolError(code: .invalidBytes, reason: "control characters in an attribute")), start)
                    }
                    highBits |= byte
                    if byte == UInt8(ascii: "=") && equals < 0 { equals = index }
                }
                guard equals > 0 else {
                    return (.failure(PolicyProtocolError(code: .malformedAttribute, reason: "a line without name=value")), start)
                }
                let nameBytes = UnsafeRawBufferPointer(rebasing: rest[0..<equals])
                let valueBytes = UnsafeRawBufferPointer(rebasing: rest[(equals + 1)..<end])
                count += 1
                guard count <= maximumAttributes else {
                    return (.failure(PolicyProtocolError(code: .tooManyAttributes, reason: "more than \(maximumAttributes)")), start)
                }
                if highBits & 0x80 != 0 {
                    guard String(validating: UnsafeRawBufferPointer(rebasing: rest[0..<end]), as: UTF8.self) != nil else {
                        return (.failure(PolicyProtocolError(code: .invalidBytes, reason: "an attribute that is not UTF-8")), start)
                    }
                }
                // The attributes vrules reads become strings; the others stay bytes until asked for.
                if let attribute = PolicyAttribute(bytes: nameBytes) {
                    request.set(attribute, String(decoding: valueBytes, as: UTF8.self))
                } else {
                    request.appendOther(name: nameBytes, value: valueBytes)
                }
                start += found + 1
            }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        switch scan {
        case .needMore:
            self.pending = request
            self.count = count
            return .needMoreData
        case .failure(let error):
            throw error
        case .request:
            self.count = 0
            context.fireChannelRead(Self.wrapInboundOut(request))
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        // A request cut off by the end of the connection is dropped: there is no one to answer.
        return .needMoreData
    }
}
