/// Conversion between wire-form names (length-prefixed labels, possibly compressed) and the
/// presentation form used everywhere else: lower-cased, no trailing dot, root as `""`, and
/// RFC 1035 escapes (`\.`, `\\`, `\DDD`) for octets that are not plain printable ASCII.
enum DNSNameCoding {
    static let maximumWireLength = 255
    static let maximumLabelLength = 63
    /// A name of at most 255 octets has at most 127 labels, so more hops than that is a loop
    /// even if every pointer pointed backwards (which we also require).
    static let maximumPointerHops = 127

    /// Reads one name at the front of `input`, following compression pointers into `message`.
    /// `input` must be a slice of `message` (its indices are absolute offsets).
    static func readName(_ input: inout ArraySlice<UInt8>, message: [UInt8]) throws(DNSWireError) -> String {
        var text: [UInt8] = []
        var wireLength = 1  // the terminating zero octet
        var hops = 0
        var cursor = input
        var followedPointer = false

        while true {
            let position = cursor.startIndex
            let length = try cursor.readUInt8("a name")
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    if !followedPointer { input = cursor }
                    return String(decoding: text, as: UTF8.self)
                }
                guard length <= Self.maximumLabelLength else {
                    throw DNSWireError(.labelTooLong, "label of \(length) octets at offset \(position)")
                }
                wireLength += Int(length) + 1
                guard wireLength <= Self.maximumWireLength else {
                    throw DNSWireError(.nameTooLong, "name longer than 255 octets at offset \(position)")
                }
                let label = try cursor.readBytes(Int(length), "a label")
                if !text.isEmpty { text.append(UInt8(ascii: ".")) }
                Self.appendEscaped(label, to: &text)
            case 0xC0:
                let low = try cursor.readUInt8("a compression pointer")
                let target = Int(length & 0x3F) << 8 | Int(low)
                guard target < message.count else {
                    throw DNSWireError(.pointerOutOfBounds, "pointer at offset \(position) to \(target), packet has \(message.count) octets")
                }
                guard target < position else {
                    throw DNSWireError(.compressionLoop, "pointer at offset \(position) to \(target) does not point backwards")
                }
                hops += 1
                guard hops <= Self.maximumPointerHops else {
                    throw DNSWireError(.compressionLoop, "more than \(Self.maximumPointerHops) compression pointers")
                }
                if !followedPointer {
                    input = cursor
                    followedPointer = true
                }
                cursor = message[target...]
            case 0x40:
                // The 0b01 prefix was the obsolete extended label type (RFC 6891 deprecates it):
                // in practice it is a label length of 64 to 127.
                throw DNSWireError(.labelTooLong, "label length \(length) over 63 at offset \(position)")
            default:
                throw DNSWireError(.invalidLabelType, "reserved label type 0b10 at offset \(position)")
            }
        }
    }

    static func appendEscaped(_ label: ArraySlice<UInt8>, to text: inout [UInt8]) {
        for byte in label {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                text.append(byte | 0x20)
            case UInt8(ascii: "."), UInt8(ascii: "\\"):
                text.append(UInt8(ascii: "\\"))
                text.append(byte)
            case 0x21...0x7E:
                text.append(byte)
            default:
                text.append(UInt8(ascii: "\\"))
                text.append(UInt8(ascii: "0") + byte / 100)
                text.append(UInt8(ascii: "0") + (byte / 10) % 10)
                text.append(UInt8(ascii: "0") + byte % 10)
            }
        }
    }

    /// Splits a presentation-form name into raw labels, undoing escapes.
    static func labels(of name: String) throws(DNSWireError) -> [[UInt8]] {
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        let bytes = Array(name.utf8)
        if bytes.isEmpty || bytes == [UInt8(ascii: ".")] { return [] }
        var index = 0
        var total = 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { throw DNSWireError(.invalidName, "dangling escape in '\(name)'") }
                let next = bytes[index + 1]
                if next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9") {
                    guard index + 3 < bytes.count else {
                        throw DNSWireError(.invalidName, "short \\DDD escape in '\(name)'")
                    }
                    var value = 0
                    for digit in bytes[(index + 1)...(index + 3)] {
                        guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else {
                            throw DNSWireError(.invalidName, "bad \\DDD escape in '\(name)'")
                        }
                        value = value * 10 + Int(digit - UInt8(ascii: "0"))
                    }
                    guard value <= 255 else { throw DNSWireError(.invalidName, "escape over 255 in '\(name)'") }
                    current.append(UInt8(value))
                    index += 4
                } else {
                    current.append(next)
                    index += 2
                }
                continue
            }
            if byte == UInt8(ascii: ".") {
                guard !current.isEmpty else { throw DNSWireError(.invalidName, "empty label in '\(name)'") }
                guard current.count <= Self.maximumLabelLength else {
                    throw DNSWireError(.labelTooLong, "label over 63 octets in '\(name)'")
                }
                total += current.count + 1
                labels.append(current)
                current = []
            } else {
                current.append(byte)
            }
            index += 1
        }
        if !current.isEmpty {
            guard current.count <= Self.maximumLabelLength else {
                throw DNSWireError(.labelTooLong, "label over 63 octets in '\(name)'")
            }
            total += current.count + 1
            labels.append(current)
        }
        guard total <= Self.maximumWireLength else { throw DNSWireError(.nameTooLong, "'\(name)' is longer than 255 octets") }
        return labels
    }
}

extension DNSNameCoding {
    /// Reads a name that must not be compressed (inside DNSSEC record data): a pointer there
    /// is malformed rather than followed, since the data is read apart from its message.
    static func readUncompressedName(_ input: inout ArraySlice<UInt8>) throws(DNSWireError) -> String {
        var text: [UInt8] = []
        var wireLength = 1
        while true {
            let length = try input.readUInt8("a name")
            if length == 0 { return String(decoding: text, as: UTF8.self) }
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
            let label = try input.readBytes(Int(length), "a label")
            if !text.isEmpty { text.append(UInt8(ascii: ".")) }
            Self.appendEscaped(label, to: &text)
        }
    }
}
