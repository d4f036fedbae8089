import DNS

/// Writes a message, compressing names against every suffix already written (RFC 1035 §4.1.4).
struct DNSMessageEncoder {
    private(set) var bytes: [UInt8] = []
    /// Lower-cased wire suffix → offset of its first label. Offsets must fit in 14 bits.
    private var suffixes: [[UInt8]: Int] = [:]
    /// Names inside record data of types defined after RFC 1035 must not be compressed (RFC 3597 §4).
    private let compress: Bool

    init(compress: Bool = true, capacity: Int = 512) {
        self.compress = compress
        self.bytes.reserveCapacity(capacity)
    }

    mutating func writeName(_ name: String, compressible: Bool = true) throws(DNSWireError) {
        guard self.compress else {
            try DNSNameCoding.appendWireName(name, to: &self.bytes)
            return
        }
        let labels = try DNSNameCoding.labels(of: name)
        for index in labels.indices {
            let key = Self.suffixKey(labels[index...])
            if compressible, let offset = self.suffixes[key] {
                self.bytes.appendUInt16(0xC000 | UInt16(offset))
                return
            }
            if self.bytes.count < 0x4000 && self.suffixes[key] == nil { self.suffixes[key] = self.bytes.count }
            self.bytes.append(UInt8(labels[index].count))
            self.bytes.append(contentsOf: labels[index])
        }
        self.bytes.append(0)
    }

    private static func suffixKey(_ labels: ArraySlice<[UInt8]>) -> [UInt8] {
        var key: [UInt8] = []
        for label in labels {
            // Length-prefixed so that labels containing dots cannot collide.
            key.append(UInt8(label.count))
            for byte in label { key.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) }
        }
        return key
    }

    mutating func writeQuestion(_ question: DNSWireQuestion) throws(DNSWireError) {
        try self.writeName(question.name)
        self.bytes.appendUInt16(question.type.rawValue)
        self.bytes.appendUInt16(question.recordClass)
    }

    mutating func writeRecord(_ record: DNSResourceRecord) throws(DNSWireError) {
        try self.writeName(record.name)
        self.bytes.appendUInt16(record.type.rawValue)
        self.bytes.appendUInt16(record.recordClass)
        self.bytes.appendUInt32(record.ttl)
        let lengthOffset = self.bytes.count
        self.bytes.appendUInt16(0)
        try self.writeRecordData(record.data)
        let length = self.bytes.count - lengthOffset - 2
        guard length <= Int(UInt16.max) else { throw DNSWireError(.messageTooLarge, "record data of \(length) octets") }
        self.bytes[lengthOffset] = UInt8(truncatingIfNeeded: length >> 8)
        self.bytes[lengthOffset + 1] = UInt8(truncatingIfNeeded: length)
    }

    mutating func writeRecordData(_ data: DNSRecordData) throws(DNSWireError) {
        switch data {
        case .a(let address), .aaaa(let address):
            self.bytes.append(contentsOf: address.bytes)
        case .ns(let name), .cname(let name), .ptr(let name):
            try self.writeName(name)
        case .mx(let preference, let exchange):
            self.bytes.appendUInt16(preference)
            try self.writeName(exchange)
        case .txt(let strings):
            for string in strings {
                guard string.count <= 255 else {
                    throw DNSWireError(.invalidRecordData, "TXT string of \(string.count) octets")
                }
                self.bytes.append(UInt8(string.count))
                self.bytes.append(contentsOf: string)
            }
        case .soa(let soa):
            try self.writeName(soa.mname)
            try self.writeName(soa.rname)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { self.bytes.appendUInt32(value) }
        case .srv(let priority, let weight, let port, let target):
            self.bytes.appendUInt16(priority)
            self.bytes.appendUInt16(weight)
            self.bytes.appendUInt16(port)
            try self.writeName(target, compressible: false)
        case .unknown(_, let raw):
            self.bytes.append(contentsOf: raw)
        }
    }

    mutating func writeOPT(_ edns: EDNS) {
        self.bytes.append(0)  // root owner
        self.bytes.appendUInt16(DNSRecordType.opt.rawValue)
        self.bytes.appendUInt16(edns.udpPayloadSize)
        var ttl = UInt32(edns.extendedRcode) << 24 | UInt32(edns.version) << 16
        if edns.dnssecOK { ttl |= 0x8000 }
        self.bytes.appendUInt32(ttl)
        let length = edns.options.reduce(0) { $0 + 4 + $1.data.count }
        self.bytes.appendUInt16(UInt16(truncatingIfNeeded: length))
        for option in edns.options {
            self.bytes.appendUInt16(option.code)
            self.bytes.appendUInt16(UInt16(truncatingIfNeeded: option.data.count))
            self.bytes.append(contentsOf: option.data)
        }
    }
}

extension DNSMessage {
    /// Encodes the message, compressing names unless `compress` is false.
    package func encoded(compress: Bool = true) throws(DNSWireError) -> [UInt8] {
        var encoder = DNSMessageEncoder(compress: compress)
        var header = self.header
        header.rcodeLow = UInt8(self.responseCode.rawValue & 0x0f)
        encoder.writeHeader(id: header.id, flags: header.flags, counts: [
            self.questions.count, self.answers.count, self.authority.count,
            self.additional.count + (self.edns == nil ? 0 : 1),
        ])
        for question in self.questions { try encoder.writeQuestion(question) }
        for record in self.answers { try encoder.writeRecord(record) }
        for record in self.authority { try encoder.writeRecord(record) }
        for record in self.additional { try encoder.writeRecord(record) }
        if let edns = self.edns { encoder.writeOPT(edns) }
        guard encoder.bytes.count <= Int(UInt16.max) else {
            throw DNSWireError(.messageTooLarge, "message of \(encoder.bytes.count) octets")
        }
        return encoder.bytes
    }
}

extension DNSMessage {
    /// `query(id:question:dnssecOK:).encoded(compress: false)`, written straight from its
    /// parts: what every exchange sends, with no message built to be encoded.
    package static func queryPacket(id: UInt16, question: DNSWireQuestion, dnssecOK: Bool) throws(DNSWireError) -> [UInt8] {
        var encoder = DNSMessageEncoder(compress: false, capacity: 32 + question.name.utf8.count)
        let header = DNSHeader(id: id, recursionDesired: true, checkingDisabled: dnssecOK)
        encoder.writeHeader(id: id, flags: header.flags, counts: [1, 0, 0, 1])
        try encoder.writeQuestion(question)
        encoder.writeOPT(EDNS(dnssecOK: dnssecOK))
        return encoder.bytes
    }
}

extension DNSMessageEncoder {
    mutating func writeHeader(id: UInt16, flags: UInt16, counts: [Int]) {
        self.bytes.appendUInt16(id)
        self.bytes.appendUInt16(flags)
        for count in counts { self.bytes.appendUInt16(UInt16(truncatingIfNeeded: count)) }
    }
}
