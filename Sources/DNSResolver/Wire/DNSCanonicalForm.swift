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
        if let count = Self.plainLabelCount(name) { return count }
        let labels = try Self.labels(name)
        if labels.first == [UInt8(ascii: "*")] { return labels.count - 1 }
        return labels.count
    }

    /// `labelCount` for a name without escapes, empty labels or over-long parts, in one pass
    /// over its octets (every signature check and wildcard test counts labels); nil otherwise,
    /// and the general path decides and reports.
    private static func plainLabelCount(_ name: String) -> Int? {
        let text = name.utf8
        guard !text.isEmpty, text.count <= 253 else { return nil }
        var labels = 1
        var length = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard length > 0 else { return nil }
                labels += 1
                length = 0
            } else {
                guard byte != UInt8(ascii: "\\"), length < 63 else { return nil }
                length += 1
            }
        }
        guard length > 0 else { return nil }
        let wildcard = text.first == UInt8(ascii: "*") && (text.count == 1 || text.dropFirst().first == UInt8(ascii: "."))
        return wildcard ? labels - 1 : labels
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
        let wire = try Self.name(owner)
        return Self.signedOwner(wire: wire, rrsigLabels: rrsigLabels)
    }

    /// `signedOwner` from the owner's canonical wire form.
    private static func signedOwner(wire: [UInt8], rrsigLabels: Int) -> [UInt8] {
        guard let keptFrom = Self.wildcardSuffixStart(wire, at: 0, rrsigLabels: rrsigLabels) else { return wire }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + wire.count - keptFrom)
        bytes.append(1)
        bytes.append(UInt8(ascii: "*"))
        bytes.append(contentsOf: wire[keptFrom...])
        return bytes
    }

    /// For the canonical wire name at `start` in `bytes`: nil when the RRSIG's `labels` field
    /// covers the whole owner, otherwise where its rightmost `rrsigLabels` labels begin (the
    /// labels before are replaced by `*`). The labels are walked in place, no array per label.
    private static func wildcardSuffixStart(_ bytes: [UInt8], at start: Int, rrsigLabels: Int) -> Int? {
        var count = 0
        var offset = start
        while offset < bytes.count && bytes[offset] != 0 {
            count += 1
            offset += Int(bytes[offset]) + 1
        }
        let startsWithStar = bytes.count > start + 2 && bytes[start] == 1 && bytes[start + 1] == UInt8(ascii: "*")
        let ownerLabels = startsWithStar ? count - 1 : count
        guard rrsigLabels < ownerLabels else { return nil }
        var skip = count - max(0, rrsigLabels)
        offset = start
        while skip > 0 {
            offset += Int(bytes[offset]) + 1
            skip -= 1
        }
        return offset
    }

    /// Appends the canonical wire form of `name` (as `name(_:)` returns it) to `output`.
    package static func appendName(_ name: String, to output: inout [UInt8]) throws(DNSWireError) {
        let start = output.count
        if Self.appendPlainName(name, to: &output) { return }
        output.removeSubrange(start...)
        output.append(contentsOf: try Self.name(name))
    }

    /// `plainName` written straight into `output`; false (with some octets written) when the
    /// name needs the general path.
    private static func appendPlainName(_ name: String, to output: inout [UInt8]) -> Bool {
        let text = name.utf8
        guard text.count <= 253 else { return false }
        if text.isEmpty {
            output.append(0)
            return true
        }
        var lengthAt = output.count
        output.append(0)
        var length = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard length > 0 && length <= 63 else { return false }
                output[lengthAt] = UInt8(length)
                lengthAt = output.count
                output.append(0)
                length = 0
            } else {
                guard byte != UInt8(ascii: "\\") else { return false }
                output.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
                length += 1
            }
        }
        guard length > 0 && length <= 63 else { return false }
        output[lengthAt] = UInt8(length)
        output.append(0)
        return true
    }

    /// The octets a signature covers (RFC 4034 §3.1.8.1): the RRSIG data without the signature,
    /// then every record of the set in canonical form and order, with the original TTL.
    /// Duplicate records are dropped (§6.3). Written into one buffer sized up front.
    package static func signedData(rrsig: RRSIGData, owner: String, type: DNSRecordType, recordClass: UInt16,
                                   records: [DNSRecordData]) throws(DNSWireError) -> [UInt8] {
        var output: [UInt8] = []
        if records.count == 1 {
            // One record (most RRsets): nothing to sort, names written in place, no copy of
            // anything kept apart.
            output.reserveCapacity(18 + rrsig.signerName.utf8.count + 2 + owner.utf8.count + 2 + 10 + 64)
            try rrsig.appendSignedPrefix(to: &output)
            let ownerStart = output.count
            try Self.appendName(owner, to: &output)
            if let keptFrom = Self.wildcardSuffixStart(output, at: ownerStart, rrsigLabels: Int(rrsig.labels)) {
                output.replaceSubrange(ownerStart..<keptFrom, with: [1, UInt8(ascii: "*")])
            }
            output.appendUInt16(type.rawValue)
            output.appendUInt16(recordClass)
            output.appendUInt32(rrsig.originalTTL)
            let lengthAt = output.count
            output.appendUInt16(0)
            try Self.appendRecordData(records[0], to: &output)
            let length = output.count - lengthAt - 2
            output[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
            output[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
            return output
        }
        let ownerBytes = try Self.signedOwner(owner, rrsigLabels: Int(rrsig.labels))
        var datas: [[UInt8]] = []
        datas.reserveCapacity(records.count)
        var total = 0
        for record in records {
            let data = try Self.recordData(record)
            total += ownerBytes.count + 10 + data.count
            datas.append(data)
        }
        datas.sort { $0.lexicographicallyPrecedes($1) }
        output.reserveCapacity(18 + rrsig.signerName.utf8.count + 2 + total)
        try rrsig.appendSignedPrefix(to: &output)
        var previous: [UInt8]? = nil
        for data in datas {
            if data == previous { continue }
            previous = data
            output.append(contentsOf: ownerBytes)
            output.appendUInt16(type.rawValue)
            output.appendUInt16(recordClass)
            output.appendUInt32(rrsig.originalTTL)
            output.appendUInt16(UInt16(truncatingIfNeeded: data.count))
            output.append(contentsOf: data)
        }
        return output
    }

    /// `recordData` appended to `output`: the octets are copied once, not built apart first,
    /// for the types kept as they are (addresses and DNSSEC types, nearly every signed RRset).
    private static func appendRecordData(_ data: DNSRecordData, to output: inout [UInt8]) throws(DNSWireError) {
        switch data {
        case .a(let address), .aaaa(let address):
            output.append(contentsOf: address.bytes)
        case .unknown(_, let raw):
            output.append(contentsOf: raw)
        default:
            output.append(contentsOf: try Self.recordData(data))
        }
    }

    /// Canonical name order (§6.1): labels compared from the right, each as lower-cased octets;
    /// a name sorts before the names below it. Names that cannot be encoded sort by their text.
    package static func precedes(_ left: String, _ right: String) -> Bool {
        let backslash = UInt8(ascii: "\\")
        if !left.utf8.contains(backslash) && !right.utf8.contains(backslash) {
            var left = left
            var right = right
            return left.withUTF8 { leftBytes in right.withUTF8 { rightBytes in Self.plainPrecedes(leftBytes, rightBytes) } }
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

    /// `precedes` for names without escapes: labels compared from the right in place, over
    /// the strings' own octets, nothing copied (NSEC spans are checked on every denial).
    private static func plainPrecedes(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Bool {
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
