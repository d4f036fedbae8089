import NIOCore
#if canImport(Glibc)
import Glibc
#endif

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
        // a line, control bytes and UTF-8 checked together, and the strings made without a
        // second validation pass. The lines are kept as one copy, for the attributes without
        // a slot.
        let maximum = self.limits.maximumLineLength
        let maximumAttributes = self.limits.maximumAttributes
        var request = self.pending ?? PolicyRequest()
        var count = self.count
        self.pending = nil
        let (scan, consumed): (Scan, Int) = buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return (.needMore, 0) }
            var start = 0
            while true {
                let line = base + start
                let rest = raw.count - start
                guard let newline = memchr(line, 0x0A, rest) else {
                    if rest > maximum {
                        return (.failure(PolicyProtocolError(code: .lineTooLong, reason: "\(rest) bytes")), start)
                    }
                    request.appendLines(UnsafeRawBufferPointer(start: base, count: start))
                    return (.needMore, start)
                }
                let found = UnsafeRawPointer(newline) - line
                guard found <= maximum else {
                    return (.failure(PolicyProtocolError(code: .lineTooLong, reason: "\(found) bytes")), start)
                }
                let bytes = line.assumingMemoryBound(to: UInt8.self)
                var end = found
                if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end == 0 {
                    request.appendLines(UnsafeRawBufferPointer(start: base, count: start))
                    return (.request, start + found + 1)
                }
                if let failure = Self.check(UnsafeBufferPointer(start: bytes, count: end)) { return (.failure(failure), start) }
                guard let equals = memchr(line, Int32(UInt8(ascii: "=")), end).map({ UnsafeRawPointer($0) - line }), equals > 0 else {
                    return (.failure(PolicyProtocolError(code: .malformedAttribute, reason: "a line without name=value")), start)
                }
                count += 1
                guard count <= maximumAttributes else {
                    return (.failure(PolicyProtocolError(code: .tooManyAttributes, reason: "more than \(maximumAttributes)")), start)
                }
                // The attributes vrules reads become strings; the others are read from the lines when asked for.
                if let attribute = PolicyAttribute(bytes: UnsafeRawBufferPointer(start: line, count: equals)) {
                    request.set(attribute, String(decoding: UnsafeBufferPointer(start: bytes + equals + 1, count: end - equals - 1),
                                                  as: UTF8.self))
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

    /// Why a line (without its line end) cannot be taken, if it cannot: a NUL or another
    /// control byte (tab aside), DEL, or bytes that are not UTF-8.
    private static func check(_ line: UnsafeBufferPointer<UInt8>) -> PolicyProtocolError? {
        var invalid: UInt8 = 0
        var highBits: UInt8 = 0
        Self.invalidBytes.withUnsafeBufferPointer { table in
            for byte in line {
                invalid |= table[Int(byte)]
                highBits |= byte
            }
        }
        if invalid != 0 {
            return PolicyProtocolError(code: .invalidBytes, reason: "control characters in an attribute")
        }
        if highBits & 0x80 != 0 && String(validating: line, as: UTF8.self) == nil {
            return PolicyProtocolError(code: .invalidBytes, reason: "an attribute that is not UTF-8")
        }
        return nil
    }

    /// 1 for the bytes no attribute may hold: the C0 controls but tab, and DEL.
    private static let invalidBytes: [UInt8] = (0...255).map { byte in
        (byte < 0x20 && byte != 0x09) || byte == 0x7F ? 1 : 0
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        // A request cut off by the end of the connection is dropped: there is no one to answer.
        return .needMoreData
    }
}
