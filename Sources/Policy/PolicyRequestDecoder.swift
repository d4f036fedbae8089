import CPolicyScan
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits the byte stream into requests: `name=value` lines ended by an empty line.
/// Every read is bounded: a line longer than the limit, too many attributes, a line
/// without `=`, a NUL or other control byte, or invalid UTF-8 is an error.
public struct PolicyRequestDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = PolicyRequest

    private let limits: PolicyProtocolLimits
    /// The request read so far, when a read ended inside it.
    private var pending: PolicyRequest?
    private var count = 0
    /// Bytes of the lines of the request read so far.
    private var size = 0
    /// Each slot's value in the connection's last request that sent it. A request repeats
    /// most of them (the request type, the client, the HELO name, the transaction's sender
    /// and instance): one whose bytes are the same is reused rather than made again.
    private var lastValues = [String](repeating: "", count: PolicyAttribute.allCases.count)

    public init(limits: PolicyProtocolLimits = PolicyProtocolLimits()) {
        self.limits = limits
    }

    /// What one pass over the readable bytes found.
    private enum Scan {
        case needMore
        case request
        case failure(PolicyProtocolError)
    }

    /// The next complete request, nil until one is.
    public mutating func decode(buffer: inout ByteBuffer) throws -> PolicyRequest? {
        // One pass over every complete line in place, up to the end of one request: no copy of
        // a line, and the strings made without a second validation pass. The bytes of the
        // lines a pass took are checked together, sixteen at a time, before anything is kept
        // or a fault reported: the verdict a check of each line in turn gives, as the bytes
        // of the lines before a faulty one are checked before its fault counts. The lines
        // are kept as one copy, for the attributes without a slot.
        let maximum = self.limits.maximumLineLength
        let maximumAttributes = self.limits.maximumAttributes
        let maximumSize = self.limits.maximumRequestSize
        var request = self.pending ?? PolicyRequest()
        var count = self.count
        var size = self.size
        self.pending = nil
        let (scan, consumed): (Scan, Int) = buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return (.needMore, 0) }
            /// The fault of the line at `start`, unless the bytes before `checkedEnd` fail first.
            func failure(_ error: PolicyProtocolError, checkedEnd: Int, start: Int) -> (Scan, Int) {
                (.failure(Self.check(UnsafeRawBufferPointer(start: base, count: checkedEnd)) ?? error), start)
            }
            var start = 0
            while true {
                let line = base + start
                let rest = raw.count - start
                guard let newline = memchr(line, 0x0A, rest) else {
                    if rest > maximum {
                        return failure(PolicyProtocolError(code: .lineTooLong, reason: "\(rest) bytes"), checkedEnd: start, start: start)
                    }
                    let lines = UnsafeRawBufferPointer(start: base, count: start)
                    if let invalid = Self.check(lines) { return (.failure(invalid), start) }
                    request.appendLines(lines)
                    return (.needMore, start)
                }
                let found = UnsafeRawPointer(newline) - line
                guard found <= maximum else {
                    return failure(PolicyProtocolError(code: .lineTooLong, reason: "\(found) bytes"), checkedEnd: start, start: start)
                }
                let bytes = line.assumingMemoryBound(to: UInt8.self)
                var end = found
                if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end == 0 {
                    let lines = UnsafeRawBufferPointer(start: base, count: start)
                    if let invalid = Self.check(lines) { return (.failure(invalid), start) }
                    request.appendLines(lines)
                    return (.request, start + found + 1)
                }
                guard let equals = memchr(line, Int32(UInt8(ascii: "=")), end).map({ UnsafeRawPointer($0) - line }), equals > 0 else {
                    return failure(PolicyProtocolError(code: .malformedAttribute, reason: "a line without name=value"),
                                   checkedEnd: start + end, start: start)
                }
                count += 1
                guard count <= maximumAttributes else {
                    return failure(PolicyProtocolError(code: .tooManyAttributes, reason: "more than \(maximumAttributes)"),
                                   checkedEnd: start + end, start: start)
                }
                size += found + 1
                guard size <= maximumSize else {
                    return failure(PolicyProtocolError(code: .requestTooLarge, reason: "more than \(maximumSize) bytes"),
                                   checkedEnd: start + end, start: start)
                }
                // The attributes vrules reads become strings (before their bytes are checked:
                // if those fail, the request goes, strings and all); the others are read from
                // the lines when asked for.
                if let attribute = PolicyAttribute(bytes: UnsafeRawBufferPointer(start: line, count: equals)) {
                    request.set(attribute, self.value(attribute, UnsafeBufferPointer(start: bytes + equals + 1, count: end - equals - 1)))
                }
                start += found + 1
            }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        switch scan {
        case .needMore:
            self.pending = request
            self.count = count
            self.size = size
            return nil
        case .failure(let error):
            throw error
        case .request:
            self.count = 0
            self.size = 0
            return request
        }
    }

    /// The string of a slotted value: the last one of this slot when the bytes are its
    /// UTF-8 (a kept string is valid UTF-8, so bytes that are not never match one), else a
    /// new one, kept for the next request.
    private mutating func value(_ attribute: PolicyAttribute, _ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let same = self.lastValues[attribute.rawValue].utf8.withContiguousStorageIfAvailable { last in
            last.count == bytes.count && (bytes.isEmpty || memcmp(last.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
        } ?? false
        if same { return self.lastValues[attribute.rawValue] }
        let value = String(decoding: bytes, as: UTF8.self)
        self.lastValues[attribute.rawValue] = value
        return value
    }

    /// Why lines cannot be taken, if they cannot: `bytes` are whole lines with their line
    /// ends (LF, or CR LF), or the content of one, and may hold no NUL or other control
    /// byte (tab aside), no DEL, no CR but one ending a line, and only UTF-8. The fault
    /// reported is the first faulty line's, as if the lines had come one read each.
    static func check(_ bytes: UnsafeRawBufferPointer) -> PolicyProtocolError? {
        guard let fault = Self.checkTogether(bytes), let base = bytes.baseAddress else { return nil }
        // Rare: lines are checked together for speed, and one line's control byte would be
        // reported before an earlier line's invalid UTF-8.
        var start = 0
        while start < bytes.count {
            let end = memchr(base + start, 0x0A, bytes.count - start).map { UnsafeRawPointer($0) - base + 1 } ?? bytes.count
            if let first = Self.checkTogether(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) { return first }
            start = end
        }
        return fault
    }

    /// `check` of all the bytes at once: a control byte anywhere before invalid UTF-8 anywhere.
    private static func checkTogether(_ bytes: UnsafeRawBufferPointer) -> PolicyProtocolError? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let flags = vrules_policy_scan(base, bytes.count)
        var invalid = flags & Int32(VRULES_POLICY_SCAN_CONTROL) != 0
        if !invalid && flags & Int32(VRULES_POLICY_SCAN_CARRIAGE) != 0 {
            // Rare (Postfix ends lines with LF alone): each CR must end a line.
            let count = bytes.count
            for index in 0..<count where base[index] == 0x0D && (index + 1 == count || base[index + 1] != 0x0A) {
                invalid = true
            }
        }
        if invalid {
            return PolicyProtocolError(code: .invalidBytes, reason: "control characters in an attribute")
        }
        if flags & Int32(VRULES_POLICY_SCAN_HIGH) != 0
            && String(validating: UnsafeBufferPointer(start: base, count: bytes.count), as: UTF8.self) == nil {
            return PolicyProtocolError(code: .invalidBytes, reason: "an attribute that is not UTF-8")
        }
        return nil
    }

    /// What is left when the connection ends: its complete requests; a request cut off by
    /// the end is dropped (there is no one to answer).
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PolicyRequest? {
        try self.decode(buffer: &buffer)
    }
}
