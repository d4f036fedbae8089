import DNS

extension DNSMessage {
    /// Decodes a whole packet. Every failure is a `DNSWireError`; nothing traps.
    package init(decoding packet: [UInt8]) throws(DNSWireError) {
        var input = packet[...]
        let id = try input.readUInt16("the header")
        let flags = try input.readUInt16("the header")
        let questionCount = try input.readUInt16("the header")
        let answerCount = try input.readUInt16("the header")
        let authorityCount = try input.readUInt16("the header")
        let additionalCount = try input.readUInt16("the header")

        // Every question takes at least 5 octets and every record at least 11: a count the
        // rest of the packet cannot hold is rejected before anything is allocated for it.
        let minimum = Int(questionCount) * 5 + (Int(answerCount) + Int(authorityCount) + Int(additionalCount)) * 11
        guard minimum <= input.count else {
            throw DNSWireError(.truncatedPacket, "section counts need at least \(minimum) octets, \(input.count) left")
        }

        var questions: [DNSWireQuestion] = []
        questions.reserveCapacity(Int(questionCount))
        for _ in 0..<questionCount {
            let name = try DNSNameCoding.readName(&input, message: packet)
            let type = DNSRecordType(rawValue: try input.readUInt16("a question"))
            let recordClass = try input.readUInt16("a question")
            questions.append(DNSWireQuestion(name: name, type: type, recordClass: recordClass))
        }

        let answers = try Self.readRecords(count: answerCount, from: &input, packet: packet, allowOPT: false).records
        let authority = try Self.readRecords(count: authorityCount, from: &input, packet: packet, allowOPT: false).records
        let (additional, edns) = try Self.readRecords(count: additionalCount, from: &input, packet: packet, allowOPT: true)
        guard input.isEmpty else {
            throw DNSWireError(.trailingData, "\(input.count) octets after the last record")
        }
        self.init(header: DNSHeader(id: id, flags: flags), questions: questions, answers: answers,
                  authority: authority, additional: additional, edns: edns)
    }

    /// Reads `count` records. OPT is accepted only where `allowOPT` (the additional section),
    /// at most once, and returned separately.
    private static func readRecords(
        count: UInt16, from input: inout ArraySlice<UInt8>, packet: [UInt8], allowOPT: Bool
    ) throws(DNSWireError) -> (records: [DNSResourceRecord], edns: EDNS?) {
        var records: [DNSResourceRecord] = []
        records.reserveCapacity(Int(count))
        var edns: EDNS? = nil
        for _ in 0..<count {
            let name = try DNSNameCoding.readName(&input, message: packet)
            let type = DNSRecordType(rawValue: try input.readUInt16("a record header"))
            let recordClass = try input.readUInt16("a record header")
            let rawTTL = try input.readUInt32("a record header")
            let length = try input.readUInt16("a record header")
            var rdata = try input.readBytes(Int(length), "record data")

            if type == .opt {
                guard allowOPT else { throw DNSWireError(.invalidOPT, "OPT record outside the additional section") }
                guard edns == nil else { throw DNSWireError(.invalidOPT, "more than one OPT record") }
                guard name.isEmpty else { throw DNSWireError(.invalidOPT, "OPT record owned by '\(name)', not the root") }
                edns = try Self.readOPT(payloadSize: recordClass, ttl: rawTTL, rdata: &rdata)
                continue
            }
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            let ttl = rawTTL & 0x8000_0000 == 0 ? rawTTL : 0
            let data = try Self.readRecordData(type: type, rdata: &rdata, packet: packet)
            guard rdata.isEmpty else {
                throw DNSWireError(.invalidRecordData, "\(rdata.count) unused octets in \(type) record of '\(name)'")
            }
            records.append(DNSResourceRecord(name: name, recordClass: recordClass, ttl: ttl, data: data))
        }
        return (records, edns)
    }

    private static func readOPT(payloadSize: UInt16, ttl: UInt32, rdata: inout ArraySlice<UInt8>) throws(DNSWireError) -> EDNS {
        var options: [EDNS.Option] = []
        while !rdata.isEmpty {
            let code = try rdata.readUInt16("an EDNS option")
            let length = try rdata.readUInt16("an EDNS option")
            let data = try rdata.readBytes(Int(length), "an EDNS option")
            options.append(EDNS.Option(code: code, data: Array(data)))
        }
        return EDNS(
            udpPayloadSize: payloadSize,
            extendedRcode: UInt8(truncatingIfNeeded: ttl >> 24),
            version: UInt8(truncatingIfNeeded: ttl >> 16),
            dnssecOK: ttl & 0x8000 != 0,
            options: options
        )
    }

    private static func readRecordData(
        type: DNSRecordType, rdata: inout ArraySlice<UInt8>, packet: [UInt8]
    ) throws(DNSWireError) -> DNSRecordData {
        switch type {
        case .a:
            guard rdata.count == 4 else { throw DNSWireError(.invalidRecordData, "A record of \(rdata.count) octets") }
            let bytes = try rdata.readBytes(4, "an A record")
            return .a(.v4(Array(bytes)))
        case .aaaa:
            guard rdata.count == 16 else { throw DNSWireError(.invalidRecordData, "AAAA record of \(rdata.count) octets") }
            let bytes = try rdata.readBytes(16, "an AAAA record")
            return .aaaa(.v6(Array(bytes)))
        case .ns:
            return .ns(try DNSNameCoding.readName(&rdata, message: packet))
        case .cname:
            return .cname(try DNSNameCoding.readName(&rdata, message: packet))
        case .ptr:
            return .ptr(try DNSNameCoding.readName(&rdata, message: packet))
        case .mx:
            let preference = try rdata.readUInt16("an MX record")
            let exchange = try DNSNameCoding.readName(&rdata, message: packet)
            return .mx(preference: preference, exchange: exchange)
        case .txt:
            var strings: [[UInt8]] = []
            while !rdata.isEmpty {
                let length = try rdata.readUInt8("a TXT string")
                strings.append(Array(try rdata.readBytes(Int(length), "a TXT string")))
            }
            return .txt(strings)
        case .soa:
            let mname = try DNSNameCoding.readName(&rdata, message: packet)
            let rname = try DNSNameCoding.readName(&rdata, message: packet)
            return .soa(SOAData(
                mname: mname, rname: rname,
                serial: try rdata.readUInt32("an SOA record"),
                refresh: try rdata.readUInt32("an SOA record"),
                retry: try rdata.readUInt32("an SOA record"),
                expire: try rdata.readUInt32("an SOA record"),
                minimum: try rdata.readUInt32("an SOA record")
            ))
        case .srv:
            let priority = try rdata.readUInt16("an SRV record")
            let weight = try rdata.readUInt16("an SRV record")
            let port = try rdata.readUInt16("an SRV record")
            let target = try DNSNameCoding.readName(&rdata, message: packet)
            return .srv(priority: priority, weight: weight, port: port, target: target)
        default:
            let bytes = Array(rdata)
            rdata = rdata.suffix(0)
            return .unknown(type: type, data: bytes)
        }
    }
}
