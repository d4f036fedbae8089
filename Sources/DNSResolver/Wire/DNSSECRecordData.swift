import DNS

/// The record types DNSSEC adds (RFC 4034, RFC 5155), decoded from the raw record data the
/// message decoder keeps for them. Names inside them are never compressed (RFC 4034 §4.1.1,
/// RFC 3597 §4), so a compression pointer there is malformed. Every read is guarded: bad data
/// is a `DNSWireError`, never a trap.

/// DNSKEY (RFC 4034 §2).
package struct DNSKEYData: Hashable, Sendable {
    package let flags: UInt16
    package let protocolField: UInt8
    package let algorithm: UInt8
    package let publicKey: [UInt8]
    /// The whole record data, as signed and as digested for DS.
    package let rdata: [UInt8]
    /// RFC 4034 Appendix B, computed once: every RRSIG check compares it.
    package let keyTag: UInt16
    /// The public key decoded for the crypto library on first use, shared by every copy of
    /// this record: a key cached with its zone's trust is decoded once, not per signature.
    /// It belongs to these very octets, so a rollover or another key with the same tag (a
    /// different record) can never be checked with it.
    let decodedKeyMemo = DecodedKeyMemo()

    /// Bit 7: the key may sign zone data (RFC 4034 §2.1.1).
    package var isZoneKey: Bool { self.flags & 0x0100 != 0 }
    /// Bit 8: RFC 5011 revoked; a revoked key validates nothing.
    package var isRevoked: Bool { self.flags & 0x0080 != 0 }
    /// Bit 15: secure entry point, a hint only.
    package var isSecureEntryPoint: Bool { self.flags & 0x0001 != 0 }

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.flags = try input.readUInt16("a DNSKEY record")
        self.protocolField = try input.readUInt8("a DNSKEY record")
        self.algorithm = try input.readUInt8("a DNSKEY record")
        guard !input.isEmpty else { throw DNSWireError(.invalidRecordData, "DNSKEY without a public key") }
        self.publicKey = Array(input)
        self.rdata = rdata
        self.keyTag = DNSKeyTag.compute(rdata)
    }

    /// Every field derives from the record data: equal data, equal keys.
    package static func == (lhs: DNSKEYData, rhs: DNSKEYData) -> Bool { lhs.rdata == rhs.rdata }

    package func hash(into hasher: inout Hasher) { hasher.combine(self.rdata) }

    package init(flags: UInt16, algorithm: UInt8, publicKey: [UInt8]) {
        var rdata: [UInt8] = []
        rdata.appendUInt16(flags)
        rdata.append(3)
        rdata.append(algorithm)
        rdata += publicKey
        self.flags = flags
        self.protocolField = 3
        self.algorithm = algorithm
        self.publicKey = publicKey
        self.rdata = rdata
        self.keyTag = DNSKeyTag.compute(rdata)
    }
}

/// DS (RFC 4034 §5).
package struct DSData: Hashable, Sendable {
    package var keyTag: UInt16
    package var algorithm: UInt8
    package var digestType: UInt8
    package var digest: [UInt8]

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.keyTag = try input.readUInt16("a DS record")
        self.algorithm = try input.readUInt8("a DS record")
        self.digestType = try input.readUInt8("a DS record")
        guard !input.isEmpty else { throw DNSWireError(.invalidRecordData, "DS without a digest") }
        self.digest = Array(input)
    }

    package init(keyTag: UInt16, algorithm: UInt8, digestType: UInt8, digest: [UInt8]) {
        self.keyTag = keyTag
        self.algorithm = algorithm
        self.digestType = digestType
        self.digest = digest
    }

    package var rdata: [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendUInt16(self.keyTag)
        bytes.append(self.algorithm)
        bytes.append(self.digestType)
        return bytes + self.digest
    }
}

/// RRSIG (RFC 4034 §3).
package struct RRSIGData: Hashable, Sendable {
    package var typeCovered: DNSRecordType
    package var algorithm: UInt8
    package var labels: UInt8
    package var originalTTL: UInt32
    package var expiration: UInt32
    package var inception: UInt32
    package var keyTag: UInt16
    /// Presentation form, lower-cased, root as "".
    package var signerName: String
    package var signature: [UInt8]

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.typeCovered = DNSRecordType(rawValue: try input.readUInt16("an RRSIG record"))
        self.algorithm = try input.readUInt8("an RRSIG record")
        self.labels = try input.readUInt8("an RRSIG record")
        self.originalTTL = try input.readUInt32("an RRSIG record")
        self.expiration = try input.readUInt32("an RRSIG record")
        self.inception = try input.readUInt32("an RRSIG record")
        self.keyTag = try input.readUInt16("an RRSIG record")
        self.signerName = try DNSNameCoding.readUncompressedName(&input)
        guard !input.isEmpty else { throw DNSWireError(.invalidRecordData, "RRSIG without a signature") }
        self.signature = Array(input)
    }

    package init(typeCovered: DNSRecordType, algorithm: UInt8, labels: UInt8, originalTTL: UInt32,
                 expiration: UInt32, inception: UInt32, keyTag: UInt16, signerName: String, signature: [UInt8]) {
        self.typeCovered = typeCovered
        self.algorithm = algorithm
        self.labels = labels
        self.originalTTL = originalTTL
        self.expiration = expiration
        self.inception = inception
        self.keyTag = keyTag
        self.signerName = signerName
        self.signature = signature
    }

    /// The record data up to the signature, signer name in canonical form: the start of
    /// the data a signature covers (RFC 4034 §3.1.8.1).
    package func signedPrefix() throws(DNSWireError) -> [UInt8] {
        var bytes: [UInt8] = []
        try self.appendSignedPrefix(to: &bytes)
        return bytes
    }

    /// `signedPrefix` appended to `bytes`, for the signed data built in one buffer.
    package func appendSignedPrefix(to bytes: inout [UInt8]) throws(DNSWireError) {
        bytes.appendUInt16(self.typeCovered.rawValue)
        bytes.append(self.algorithm)
        bytes.append(self.labels)
        bytes.appendUInt32(self.originalTTL)
        bytes.appendUInt32(self.expiration)
        bytes.appendUInt32(self.inception)
        bytes.appendUInt16(self.keyTag)
        try DNSCanonicalForm.appendName(self.signerName, to: &bytes)
    }

    package func rdata() throws(DNSWireError) -> [UInt8] { try self.signedPrefix() + self.signature }
}

/// NSEC (RFC 4034 §4).
package struct NSECData: Hashable, Sendable {
    /// Presentation form, lower-cased.
    package var nextName: String
    package var types: DNSSECTypeBitmap

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.nextName = try DNSNameCoding.readUncompressedName(&input)
        self.types = try DNSSECTypeBitmap(decoding: &input)
    }

    package init(nextName: String, types: DNSSECTypeBitmap) {
        self.nextName = nextName
        self.types = types
    }

    package func rdata() throws(DNSWireError) -> [UInt8] {
        try DNSCanonicalForm.name(self.nextName) + self.types.encoded
    }
}

/// NSEC3 (RFC 5155 §3).
package struct NSEC3Data: Hashable, Sendable {
    package var hashAlgorithm: UInt8
    package var flags: UInt8
    package var iterations: UInt16
    package var salt: [UInt8]
    package var nextHashedOwner: [UInt8]
    package var types: DNSSECTypeBitmap

    /// Bit 7 of the flags: unsigned delegations may lie in the span (RFC 5155 §3.1.2.1).
    package var isOptOut: Bool { self.flags & 0x01 != 0 }

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.hashAlgorithm = try input.readUInt8("an NSEC3 record")
        self.flags = try input.readUInt8("an NSEC3 record")
        self.iterations = try input.readUInt16("an NSEC3 record")
        let saltLength = try input.readUInt8("an NSEC3 record")
        self.salt = Array(try input.readBytes(Int(saltLength), "an NSEC3 salt"))
        let hashLength = try input.readUInt8("an NSEC3 record")
        guard hashLength > 0 else { throw DNSWireError(.invalidRecordData, "NSEC3 with an empty next hashed owner") }
        self.nextHashedOwner = Array(try input.readBytes(Int(hashLength), "an NSEC3 next hashed owner"))
        self.types = try DNSSECTypeBitmap(decoding: &input)
    }

    package init(hashAlgorithm: UInt8 = 1, flags: UInt8, iterations: UInt16, salt: [UInt8],
                 nextHashedOwner: [UInt8], types: DNSSECTypeBitmap) {
        self.hashAlgorithm = hashAlgorithm
        self.flags = flags
        self.iterations = iterations
        self.salt = salt
        self.nextHashedOwner = nextHashedOwner
        self.types = types
    }

    package var rdata: [UInt8] {
        var bytes: [UInt8] = [self.hashAlgorithm, self.flags]
        bytes.appendUInt16(self.iterations)
        bytes.append(UInt8(self.salt.count))
        bytes += self.salt
        bytes.append(UInt8(self.nextHashedOwner.count))
        bytes += self.nextHashedOwner
        return bytes + self.types.encoded
    }
}

/// NSEC3PARAM (RFC 5155 §4).
package struct NSEC3PARAMData: Hashable, Sendable {
    package var hashAlgorithm: UInt8
    package var flags: UInt8
    package var iterations: UInt16
    package var salt: [UInt8]

    package init(rdata: [UInt8]) throws(DNSWireError) {
        var input = rdata[...]
        self.hashAlgorithm = try input.readUInt8("an NSEC3PARAM record")
        self.flags = try input.readUInt8("an NSEC3PARAM record")
        self.iterations = try input.readUInt16("an NSEC3PARAM record")
        let saltLength = try input.readUInt8("an NSEC3PARAM record")
        self.salt = Array(try input.readBytes(Int(saltLength), "an NSEC3PARAM salt"))
        guard input.isEmpty else {
            throw DNSWireError(.invalidRecordData, "\(input.count) unused octets in an NSEC3PARAM record")
        }
    }
}

extension DNSRecordData {
    /// The raw record data of a type the message decoder does not model (all DNSSEC types).
    package var rawData: [UInt8]? {
        if case .unknown(_, let bytes) = self { return bytes }
        return nil
    }
}
