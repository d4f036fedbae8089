/// Guarded big-endian reads over a slice. Every read checks its bounds first and throws a
/// typed error instead of trapping, so no packet can crash the process.
extension ArraySlice where Element == UInt8 {
    @inline(__always)
    mutating func readUInt8(_ what: StaticString) throws(DNSWireError) -> UInt8 {
        guard let byte = self.popFirst() else {
            throw DNSWireError(.truncatedPacket, "packet ends inside \(what)")
        }
        return byte
    }

    @inline(__always)
    mutating func readUInt16(_ what: StaticString) throws(DNSWireError) -> UInt16 {
        guard self.count >= 2 else { throw DNSWireError(.truncatedPacket, "packet ends inside \(what)") }
        let start = self.startIndex
        let value = UInt16(self[start]) << 8 | UInt16(self[start + 1])
        self = self.dropFirst(2)
        return value
    }

    @inline(__always)
    mutating func readUInt32(_ what: StaticString) throws(DNSWireError) -> UInt32 {
        guard self.count >= 4 else { throw DNSWireError(.truncatedPacket, "packet ends inside \(what)") }
        let start = self.startIndex
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 8 | UInt32(self[start + offset]) }
        self = self.dropFirst(4)
        return value
    }

    @inline(__always)
    mutating func readBytes(_ count: Int, _ what: StaticString) throws(DNSWireError) -> ArraySlice<UInt8> {
        guard count >= 0, self.count >= count else {
            throw DNSWireError(.truncatedPacket, "packet ends inside \(what) (\(count) octets announced, \(self.count) left)")
        }
        let bytes = self.prefix(count)
        self = self.dropFirst(count)
        return bytes
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendUInt16(_ value: UInt16) {
        self.append(UInt8(truncatingIfNeeded: value >> 8))
        self.append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendUInt32(_ value: UInt32) {
        self.append(UInt8(truncatingIfNeeded: value >> 24))
        self.append(UInt8(truncatingIfNeeded: value >> 16))
        self.append(UInt8(truncatingIfNeeded: value >> 8))
        self.append(UInt8(truncatingIfNeeded: value))
    }
}
