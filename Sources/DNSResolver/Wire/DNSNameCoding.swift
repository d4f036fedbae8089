/// Conversion between wire-form names (length-prefixed labels, possibly compressed) and the
/// presentation form used everywhere else: lower-cased, no trailing dot, root as `""`, and
/// RFC 1035 escapes (`\.`, `\\`, `\DDD`) for octets that are not plain printable ASCII.
package enum DNSNameCoding {
    static let maximumWireLength = 255
    static let maximumLabelLength = 63
    /// A name of at most 255 octets has at most 127 labels, so more hops than that is a loop
    /// even if every pointer pointed backwards (which we also require).
    static let maximumPointerHops = 127

    /// Reads one name at the front of `input`, following compression pointers into `message`.
    /// `input` must be a slice of `message` (its indices are absolute offsets); the name may not
    /// run past `input`'s end before its first pointer, nor past the message after it.
    ///
    /// The text (lowercased, escaped) is written into a scratch buffer on the stack and made a
    /// `String` once: appended byte by byte to a growing array, names took a fifth of a reply's
    /// decoding.
    static func readName(_ input: inout ArraySlice<UInt8>, message: [UInt8]) throws(DNSWireError) -> String {
        let (start, end) = (input.startIndex, input.endIndex)
        let read = message.withUnsafeBufferPointer { packet in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumTextLength) { text in
                Self.readName(at: start, before: end, in: packet, into: text)
            }
        }
        switch read {
        case .success(let (name, next)):
            input = message[next..<end]
            return name
        case .failure(let error):
            throw error
        }
    }

    /// The longest text a name can have: at most 254 - n label octets in n labels (255 wire
    /// octets with their lengths and the final zero), each octet at most four characters
    /// (`\DDD`), and n - 1 dots: 1,012.
    static let maximumTextLength = 1_024

    /// `readName` over the packet: the name starting at `start`, read no further than `end`
    /// until a compression pointer is followed, and the offset where `input` goes on.
    private static func readName(at start: Int, before end: Int, in packet: UnsafeBufferPointer<UInt8>,
                                 into text: UnsafeMutableBufferPointer<UInt8>) -> Result<(String, Int), DNSWireError> {
        var count = 0
        var wireLength = 1  // the terminating zero octet
        var hops = 0
        var position = start
        var limit = end
        var next: Int? = nil  // where `input` goes on: set at the first pointer
        while true {
            guard position < limit else { return .failure(DNSWireError(.truncatedPacket, "packet ends inside a name")) }
            let length = packet[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    let name = String(decoding: UnsafeBufferPointer(rebasing: text[0..<count]), as: UTF8.self)
                    return .success((name, next ?? position + 1))
                }
                guard length <= Self.maximumLabelLength else {
                    return .failure(DNSWireError(.labelTooLong, "label of \(length) octets at offset \(position)"))
                }
                wireLength += Int(length) + 1
                guard wireLength <= Self.maximumWireLength else {
                    return .failure(DNSWireError(.nameTooLong, "name longer than 255 octets at offset \(position)"))
                }
                let labelStart = position + 1
                guard limit - labelStart >= Int(length) else {
                    return .failure(DNSWireError(.truncatedPacket,
                                                 "packet ends inside a label (\(length) octets announced, \(limit - labelStart) left)"))
                }
                Self.writeEscaped(packet[labelStart..<(labelStart + Int(length))], into: text, count: &count)
                position = labelStart + Int(length)
            case 0xC0:
                guard position + 1 < limit else {
                    return .failure(DNSWireError(.truncatedPacket, "packet ends inside a compression pointer"))
                }
                let target = Int(length & 0x3F) << 8 | Int(packet[position + 1])
                guard target < packet.count else {
                    return .failure(DNSWireError(.pointerOutOfBounds,
                                                 "pointer at offset \(position) to \(target), packet has \(packet.count) octets"))
                }
                guard target < position else {
                    return .failure(DNSWireError(.compressionLoop, "pointer at offset \(position) to \(target) does not point backwards"))
                }
                hops += 1
                guard hops <= Self.maximumPointerHops else {
                    return .failure(DNSWireError(.compressionLoop, "more than \(Self.maximumPointerHops) compression pointers"))
                }
                if next == nil { next = position + 2 }
                position = target
                limit = packet.count
            case 0x40:
                // The 0b01 prefix was the obsolete extended label type (RFC 6891 deprecates it):
                // in practice it is a label length of 64 to 127.
                return .failure(DNSWireError(.labelTooLong, "label length \(length) over 63 at offset \(position)"))
            default:
                return .failure(DNSWireError(.invalidLabelType, "reserved label type 0b10 at offset \(position)"))
            }
        }
    }

    /// Writes `label` in presentation form at `text[count...]`: lowercased, `.` and `\\`
    /// escaped, other octets outside printable ASCII as `\\DDD`. The caller has checked the
    /// name's wire length, which bounds the text by `maximumTextLength`.
    @inline(__always)
    static func writeEscaped<Label: Sequence<UInt8>>(_ label: Label, into text: UnsafeMutableBufferPointer<UInt8>,
                                                     count: inout Int) {
        if count > 0 {
            text[count] = UInt8(ascii: ".")
            count += 1
        }
        for byte in label {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                text[count] = byte | 0x20
                count += 1
            case UInt8(ascii: "."), UInt8(ascii: "\\"):
                text[count] = UInt8(ascii: "\\")
                text[count + 1] = byte
                count += 2
            case 0x21...0x7E:
                text[count] = byte
                count += 1
            default:
                text[count] = UInt8(ascii: "\\")
                text[count + 1] = UInt8(ascii: "0") + byte / 100
                text[count + 2] = UInt8(ascii: "0") + (byte / 10) % 10
                text[count + 3] = UInt8(ascii: "0") + byte % 10
                count += 4
            }
        }
    }

    /// Splits a presentation-form name into raw labels, undoing escapes.
    static func labels(of name: String) throws(DNSWireError) -> [[UInt8]] {
        var wire: [UInt8] = []
        try Self.appendWireName(name, to: &wire)
        var labels: [[UInt8]] = []
        var index = 0
        while wire[index] != 0 {
            let length = Int(wire[index])
            labels.append(Array(wire[(index + 1)...(index + length)]))
            index += length + 1
        }
        return labels
    }

    /// Appends `name` in uncompressed wire form (length-prefixed labels, then the zero octet),
    /// undoing escapes: the one reader of presentation-form names (`labels(of:)` is made from
    /// it), and what a query is written with, one pass and no array per label. After an
    /// error `output` holds part of the name.
    package static func appendWireName(_ name: String, to output: inout [UInt8]) throws(DNSWireError) {
        var text = name
        let failure = text.withUTF8 { bytes in Self.appendWireName(bytes, to: &output, name: name) }
        if let failure { throw failure }
    }

    private static func appendWireName(_ bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8],
                                       name: String) -> DNSWireError? {
        let start = output.count
        if bytes.isEmpty || (bytes.count == 1 && bytes[0] == UInt8(ascii: ".")) {
            output.append(0)
            return nil
        }
        // Where the length of the label being written goes; after the last label it is the
        // terminating zero.
        var lengthAt = output.count
        output.append(0)
        var labelLength = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { return DNSWireError(.invalidName, "dangling escape in '\(name)'") }
                let next = bytes[index + 1]
                if next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9") {
                    guard index + 3 < bytes.count else { return DNSWireError(.invalidName, "short \\DDD escape in '\(name)'") }
                    var value = 0
                    for digit in bytes[(index + 1)...(index + 3)] {
                        guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else {
                            return DNSWireError(.invalidName, "bad \\DDD escape in '\(name)'")
                        }
                        value = value * 10 + Int(digit - UInt8(ascii: "0"))
                    }
                    guard value <= 255 else { return DNSWireError(.invalidName, "escape over 255 in '\(name)'") }
                    output.append(UInt8(value))
                    index += 4
                } else {
                    output.append(next)
                    index += 2
                }
                labelLength += 1
                continue
            }
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0 else { return DNSWireError(.invalidName, "empty label in '\(name)'") }
                guard labelLength <= Self.maximumLabelLength else {
                    return DNSWireError(.labelTooLong, "label over 63 octets in '\(name)'")
                }
                output[lengthAt] = UInt8(labelLength)
                lengthAt = output.count
                output.append(0)
                labelLength = 0
            } else {
                output.append(byte)
                labelLength += 1
            }
            index += 1
        }
        if labelLength > 0 {
            guard labelLength <= Self.maximumLabelLength else {
                return DNSWireError(.labelTooLong, "label over 63 octets in '\(name)'")
            }
            output[lengthAt] = UInt8(labelLength)
            output.append(0)
        }
        guard output.count - start <= Self.maximumWireLength else {
            return DNSWireError(.nameTooLong, "'\(name)' is longer than 255 octets")
        }
        return nil
    }
}

extension DNSNameCoding {
    /// Reads a name that must not be compressed (inside DNSSEC record data): a pointer there
    /// is malformed rather than followed, since the data is read apart from its message.
    package static func readUncompressedName(_ input: inout ArraySlice<UInt8>) throws(DNSWireError) -> String {
        var labels: [ArraySlice<UInt8>] = []
        var wireLength = 1
        while true {
            let length = try input.readUInt8("a name")
            if length == 0 { break }
            guard length & 0xC0 == 0 else {
                throw DNSWireError(.invalidRecordData, "compressed or reserved label type in DNSSEC record data")
            }
            guard length <= Self.maximumLabelLength else {
                throw DNSWireError(.labelTooLong, "label of \(length) octets")
            }
            wireLength += Int(length) + 1
            guard wireLength <= Self.maximumWireLength else {
                throw DNSWireError(.nameTooLong, "name longer than 255 octets")
            }
            labels.append(try input.readBytes(Int(length), "a label"))
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumTextLength) { text in
            var count = 0
            for label in labels { Self.writeEscaped(label, into: text, count: &count) }
            return String(decoding: UnsafeBufferPointer(rebasing: text[0..<count]), as: UTF8.self)
        }
    }
}
