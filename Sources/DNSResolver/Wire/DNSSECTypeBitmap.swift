import DNS

/// The type bit maps of NSEC and NSEC3 (RFC 4034 §4.1.2): which RR types exist at a name.
///
/// Kept as a set of type numbers: a proof asks "is type T present?", never iterates windows.
package struct DNSSECTypeBitmap: Hashable, Sendable {
    package var types: Set<UInt16>

    package init(_ types: Set<UInt16>) { self.types = types }
    package init(_ types: [DNSRecordType]) { self.types = Set(types.map(\.rawValue)) }

    package func contains(_ type: DNSRecordType) -> Bool { self.types.contains(type.rawValue) }

    /// Reads windows until the end of `rdata`. Windows must ascend, be 1 to 32 octets long and
    /// not end in a zero octet (RFC 4034 §4.1.2); anything else is malformed.
    package init(decoding rdata: inout ArraySlice<UInt8>) throws(DNSWireError) {
        var types: Set<UInt16> = []
        var previousWindow = -1
        while !rdata.isEmpty {
            let window = try rdata.readUInt8("a type bit map window")
            let length = try rdata.readUInt8("a type bit map window")
            guard Int(window) > previousWindow else {
                throw DNSWireError(.invalidRecordData, "type bit map window \(window) out of order")
            }
            guard length >= 1 && length <= 32 else {
                throw DNSWireError(.invalidRecordData, "type bit map window of \(length) octets")
            }
            let bits = try rdata.readBytes(Int(length), "a type bit map")
            guard bits.last != 0 else {
                throw DNSWireError(.invalidRecordData, "type bit map window \(window) ends in a zero octet")
            }
            previousWindow = Int(window)
            for (offset, byte) in bits.enumerated() where byte != 0 {
                for bit in 0..<8 where byte & (0x80 >> bit) != 0 {
                    types.insert(UInt16(window) << 8 | UInt16(offset * 8 + bit))
                }
            }
        }
        self.types = types
    }

    /// The wire form: ascending windows, each as short as its highest type allows.
    package var encoded: [UInt8] {
        var bytes: [UInt8] = []
        let byWindow = Dictionary(grouping: self.types, by: { $0 >> 8 })
        for window in byWindow.keys.sorted() {
            let low = byWindow[window]!.map { Int($0 & 0xff) }
            var bits = [UInt8](repeating: 0, count: low.max()! / 8 + 1)
            for value in low { bits[value / 8] |= 0x80 >> UInt8(value % 8) }
            bytes.append(UInt8(window))
            bytes.append(UInt8(bits.count))
            bytes += bits
        }
        return bytes
    }

    /// Type names for traces and reasons ("A MX RRSIG NSEC").
    package var description: String {
        if self.types.isEmpty { return "no types" }
        return self.types.sorted().map { DNSRecordType(rawValue: $0).description }.joined(separator: " ")
    }
}
