import DNS

/// The response codes this resolver distinguishes. A struct so that codes it does not
/// know (including EDNS extended codes) survive decoding.
package struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    package static let noError = DNSResponseCode(rawValue: 0)
    package static let formErr = DNSResponseCode(rawValue: 1)
    package static let servFail = DNSResponseCode(rawValue: 2)
    package static let nxDomain = DNSResponseCode(rawValue: 3)
    package static let notImp = DNSResponseCode(rawValue: 4)
    package static let refused = DNSResponseCode(rawValue: 5)
    package static let badVers = DNSResponseCode(rawValue: 16)

    package var description: String {
        switch self {
        case .noError: return "NOERROR"
        case .formErr: return "FORMERR"
        case .servFail: return "SERVFAIL"
        case .nxDomain: return "NXDOMAIN"
        case .notImp: return "NOTIMP"
        case .refused: return "REFUSED"
        case .badVers: return "BADVERS"
        default: return "RCODE\(self.rawValue)"
        }
    }
}

/// The fixed 12-octet header, without the section counts: those are implied by the
/// arrays of `DNSMessage` when encoding and checked against the packet when decoding.
package struct DNSHeader: Hashable, Sendable {
    package var id: UInt16
    package var isResponse: Bool
    package var opcode: UInt8
    package var authoritative: Bool
    package var truncated: Bool
    package var recursionDesired: Bool
    package var recursionAvailable: Bool
    /// AD: the upstream says it validated the answer. Never trusted: this resolver validates itself.
    package var authenticData: Bool
    package var checkingDisabled: Bool
    /// The low four bits of the response code; `DNSMessage.responseCode` adds the EDNS bits.
    package var rcodeLow: UInt8

    package init(id: UInt16 = 0, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false,
                truncated: Bool = false, recursionDesired: Bool = true, recursionAvailable: Bool = false,
                authenticData: Bool = false, checkingDisabled: Bool = false, rcodeLow: UInt8 = 0) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.rcodeLow = rcodeLow
    }

    var flags: UInt16 {
        var value: UInt16 = 0
        if self.isResponse { value |= 0x8000 }
        value |= UInt16(self.opcode & 0x0f) << 11
        if self.authoritative { value |= 0x0400 }
        if self.truncated { value |= 0x0200 }
        if self.recursionDesired { value |= 0x0100 }
        if self.recursionAvailable { value |= 0x0080 }
        if self.authenticData { value |= 0x0020 }
        if self.checkingDisabled { value |= 0x0010 }
        value |= UInt16(self.rcodeLow & 0x0f)
        return value
    }

    init(id: UInt16, flags: UInt16) {
        self.id = id
        self.isResponse = flags & 0x8000 != 0
        self.opcode = UInt8((flags >> 11) & 0x0f)
        self.authoritative = flags & 0x0400 != 0
        self.truncated = flags & 0x0200 != 0
        self.recursionDesired = flags & 0x0100 != 0
        self.recursionAvailable = flags & 0x0080 != 0
        self.authenticData = flags & 0x0020 != 0
        self.checkingDisabled = flags & 0x0010 != 0
        self.rcodeLow = UInt8(flags & 0x000f)
    }
}

/// One entry of the question section. Names are in presentation form, lower-cased, without
/// the trailing dot (the root is `""`), matching `DNS.DNSQuestion`.
package struct DNSWireQuestion: Hashable, Sendable {
    package var name: String
    package var type: DNSRecordType
    package var recordClass: UInt16

    package init(name: String, type: DNSRecordType, recordClass: UInt16 = DNSMessage.classIN) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// One resource record of the answer, authority or additional section.
package struct DNSResourceRecord: Hashable, Sendable {
    package var name: String
    package var recordClass: UInt16
    package var ttl: UInt32
    package var data: DNSRecordData
    package var type: DNSRecordType { self.data.type }

    package init(name: String, recordClass: UInt16 = DNSMessage.classIN, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    /// The record in the engine's model (class is implied: only IN is ever asked for).
    package var record: DNSRecord { DNSRecord(name: self.name, ttl: self.ttl, data: self.data) }
}

/// The EDNS0 pseudo-record (RFC 6891), kept out of the additional section.
package struct EDNS: Hashable, Sendable {
    package struct Option: Hashable, Sendable {
        package var code: UInt16
        package var data: [UInt8]
        package init(code: UInt16, data: [UInt8]) {
            self.code = code
            self.data = data
        }
    }

    /// 1232 octets: the DNS Flag Day 2020 value that avoids IP fragmentation.
    package static let defaultPayloadSize: UInt16 = 1232
    /// RFC 8914 Extended DNS Error option.
    package static let extendedErrorOption: UInt16 = 15

    package var udpPayloadSize: UInt16
    package var extendedRcode: UInt8
    package var version: UInt8
    /// DO: ask for DNSSEC records (and for validation status from a validating upstream).
    package var dnssecOK: Bool
    package var options: [Option]

    package init(udpPayloadSize: UInt16 = EDNS.defaultPayloadSize, extendedRcode: UInt8 = 0, version: UInt8 = 0,
                dnssecOK: Bool = false, options: [Option] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRcode = extendedRcode
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }

    /// The RFC 8914 info codes carried in Extended DNS Error options.
    package var extendedErrorCodes: [UInt16] {
        self.options.compactMap { option in
            guard option.code == EDNS.extendedErrorOption, option.data.count >= 2 else { return nil }
            return UInt16(option.data[0]) << 8 | UInt16(option.data[1])
        }
    }
}

/// A whole DNS message.
package struct DNSMessage: Hashable, Sendable {
    package static let classIN: UInt16 = 1

    package var header: DNSHeader
    package var questions: [DNSWireQuestion]
    package var answers: [DNSResourceRecord]
    package var authority: [DNSResourceRecord]
    package var additional: [DNSResourceRecord]
    package var edns: EDNS?

    package init(header: DNSHeader, questions: [DNSWireQuestion] = [], answers: [DNSResourceRecord] = [],
                authority: [DNSResourceRecord] = [], additional: [DNSResourceRecord] = [], edns: EDNS? = nil) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }

    /// The full response code: the header's four bits extended by the OPT record's eight.
    package var responseCode: DNSResponseCode {
        get {
            let high = UInt16(self.edns?.extendedRcode ?? 0) << 4
            return DNSResponseCode(rawValue: high | UInt16(self.header.rcodeLow))
        }
        set {
            self.header.rcodeLow = UInt8(newValue.rawValue & 0x0f)
            let high = UInt8(truncatingIfNeeded: newValue.rawValue >> 4)
            if high != 0 {
                if self.edns == nil { self.edns = EDNS() }
                self.edns!.extendedRcode = high
            } else {
                self.edns?.extendedRcode = 0
            }
        }
    }

    /// A recursive query with EDNS0 (1232-octet buffer), and DO and CD when validating: the
    /// signatures are wanted, and bogus data too (CD), since this resolver judges it itself
    /// and can then say why it is bogus.
    package static func query(id: UInt16, question: DNSWireQuestion, dnssecOK: Bool) -> DNSMessage {
        DNSMessage(
            header: DNSHeader(id: id, recursionDesired: true, checkingDisabled: dnssecOK),
            questions: [question],
            edns: EDNS(dnssecOK: dnssecOK)
        )
    }
}
