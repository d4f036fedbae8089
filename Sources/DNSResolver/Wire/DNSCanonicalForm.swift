import DNS

/// Canonical form and ordering (RFC 4034 §6): what signatures cover and how NSEC spans sort.
package enum DNSCanonicalForm {
    /// The wire form of a name, uncompressed, ASCII letters lower-cased (§6.2 item 2).
    package static func name(_ name: String) throws(DNSWireError) -> [UInt8] {
        if let plain = Self.plainName(name) { return plain }
        var bytes: [UInt8] = []
        for label in try Self.labels(name) {
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
        return bytes
    }

    /// The wire form of a name without escapes, written in one pass; nil when the name has
    /// escapes or cannot be a valid name (the general path then decides and reports).
    private static func plainName(_ name: String) -> [UInt8]? {
        let text = name.utf8
        guard text.count <= 253, !text.contains(UInt8(ascii: "\\")) else { return nil }
        if text.isEmpty { return [0] }
        var bytes = [UInt8](repeating: 0, count: text.count + 2)
        var lengthAt = 0
        var length = 0
        var index = 1
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard length > 0 && length <= 63 else { return nil }
                bytes[lengthAt] = UInt8(length)
                lengthAt = index
                length = 0
            } else {
                bytes[index] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                length += 1
            }
            index += 1
        }
        guard length > 0 && length <= 63 else { return nil }
        bytes[lengthAt] = UInt8(length)
        return bytes  // the last octet is the root's zero
    }

    /// The labels of a name, lower-cased, leftmost first.
    package static func labels(_ name: String) throws(DNSWireError) -> [[UInt8]] {
        try DNSNameCoding.labels(of: name).map { label in
            label.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        }
    }

    /// The RRSIG "labels" count of a name: the root and a leading `*` do not count (§3.1.3).
    package static func labelCount(_ name: String) throws(DNSWireError) -> Int {
        // Fast path for names without escapes (nearly all): count the dots.
        if !name.utf8.contains(UInt8(ascii: "\\")) && !name.isEmpty && !name.hasSuffix(".") && !name.contains("..") {
            let labels = name.utf8.reduce(1) { $1 == UInt8(ascii: ".") ? $0 + 1 : $0 }
            return name.hasPrefix("*.") || name == "*" ? labels - 1 : labels
        }
        let labels = try Self.labels(name)
        if labels.first == [UInt8(ascii: "*")] { return labels.count - 1 }
        return labels.count
    }

    /// The record data in canonical form: names inside the types §6.2 lists are lower-cased
    /// and uncompressed; other types (DNSSEC types included, RFC 6840 §5.1) keep their octets.
    package static func recordData(_ data: DNSRecordData) throws(DNSWireError) -> [UInt8] {
        var encoder = DNSMessageEncoder(compress: false, capacity: 64)
        switch data {
        case .ns(let name), .cname(let name), .ptr(let name):
            return try Self.name(name)
        case .mx(let preference, let exchange):
            var bytes: [UInt8] = []
            bytes.appendUInt16(preference)
            return bytes + (try Self.name(exchange))
        case .soa(let soa):
            var bytes = try Self.name(soa.mname) + (try Self.name(soa.rname))
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { bytes.appendUInt32(value) }
            return bytes
        case .srv(let priority, let weight, let port, let target):
            var bytes: [UInt8] = []
            bytes.appendUInt16(priority)
            bytes.appendUInt16(weight)
            bytes.appendUInt16(port)
            return bytes + (try Self.name(target))
        default:
            try encoder.writeRecordData(data)
            return encoder.bytes
        }
    }

    /// The owner a signature covers: the name itself, or `*.` and its rightmost `labels`
    /// labels when the RRset was expanded from a wildcard (§3.1.8.1, §6.2 item 4).
    package static func signedOwner(_ owner: String, rrsigLabels: Int) throws(DNSWireError) -> [UInt8] {
        let labels = try Self.labels(owner)
        let count = labels.first == [UInt8(ascii: "*")] ? labels.count - 1 : labels.count
        guard rrsigLabels < count else { return try Self.name(owner) }
        var bytes: [UInt8] = [1, UInt8(ascii: "*")]
        for label in labels.suffix(rrsigLabels) {
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
        return bytes
    }

    /// The octets a signature covers (RFC 4034 §3.1.8.1): the RRSIG data without the signature,
    /// then every record of the set in canonical form and order, with the original TTL.
    /// Duplicate records are dropped (§6.3).
    package static func signedData(rrsig: RRSIGData, owner: String, type: DNSRecordType, recordClass: UInt16,
                                   records: [DNSRecordData]) throws(DNSWireError) -> [UInt8] {
        var output = try rrsig.signedPrefix()
        let ownerBytes = try Self.signedOwner(owner, rrsigLabels: Int(rrsig.labels))
        var datas: [[UInt8]] = []
        datas.reserveCapacity(records.count)
        for record in records { datas.append(try Self.recordData(record)) }
        datas.sort { $0.lexicographicallyPrecedes($1) }
        var previous: [UInt8]? = nil
        for data in datas {
            if data == previous { continue }
            previous = data
            output += ownerBytes
            output.appendUInt16(type.rawValue)
            output.appendUInt16(recordClass)
            output.appendUInt32(rrsig.originalTTL)
            output.appendUInt16(UInt16(truncatingIfNeeded: data.count))
            output += data
        }
        return output
    }

    /// Canonical name order (§6.1): labels compared from the right, each as lower-cased octets;
    /// a name sorts before the names below it. Names that cannot be encoded sort by their text.
    package static func precedes(_ left: String, _ right: String) -> Bool {
        let backslash = UInt8(ascii: "\\")
        if !left.utf8.contains(backslash) && !right.utf8.contains(backslash) {
            return Self.plainPrecedes(Array(left.utf8), Array(right.utf8))
        }
        guard let leftLabels = try? Self.labels(left), let rightLabels = try? Self.labels(right) else {
            return left < right
        }
        var leftIndex = leftLabels.count - 1
        var rightIndex = rightLabels.count - 1
        while leftIndex >= 0 && rightIndex >= 0 {
            let a = leftLabels[leftIndex]
            let b = rightLabels[rightIndex]
            if a != b { return a.lexicographicallyPrecedes(b) }
            leftIndex -= 1
            rightIndex -= 1
        }
        return leftIndex < rightIndex
    }

    /// `precedes` for names without escapes: labels compared from the right in place, one
    /// array per name instead of one per label (NSEC spans are checked on every denial).
    private static func plainPrecedes(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        @inline(__always) func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
        let dot = UInt8(ascii: ".")
        var leftEnd = left.count
        var rightEnd = right.count
        while true {
            let leftDone = leftEnd <= 0
            let rightDone = rightEnd <= 0
            if leftDone || rightDone { return leftDone && !rightDone }
            var leftStart = leftEnd
            while leftStart > 0 && left[leftStart - 1] != dot { leftStart -= 1 }
            var rightStart = rightEnd
            while rightStart > 0 && right[rightStart - 1] != dot { rightStart -= 1 }
            var i = leftStart
            var j = rightStart
            while i < leftEnd && j < rightEnd {
                let a = lower(left[i])
                let b = lower(right[j])
                if a != b { return a < b }
                i += 1
                j += 1
            }
            let leftLength = leftEnd - leftStart
            let rightLength = rightEnd - rightStart
            if leftLength != rightLength { return leftLength < rightLength }
            leftEnd = leftStart - 1
            rightEnd = rightStart - 1
        }
    }
}
