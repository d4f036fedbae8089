import DNS

/// One RRset of a response (same owner, type and class) with the RRSIGs that cover it.
package struct SignedRRset: Sendable {
    package var owner: String
    package var type: DNSRecordType
    package var records: [DNSResourceRecord]
    package var signatures: [RRSIGData]

    /// Owner and type: what makes an RRset (the class is IN for all of them).
    private struct Key: Hashable {
        var owner: String
        var type: UInt16
    }

    /// The RRsets of `section`, RRSIGs attached to what they cover. Malformed RRSIGs are
    /// dropped (they could not verify anything), as are records of other classes.
    package static func group(_ section: [DNSResourceRecord]) -> [SignedRRset] {
        var sets: [SignedRRset] = []
        // Indexed by owner and type once the section is large: a small one (nearly every
        // response) is searched in place, without hashing any name.
        var index: [Key: Int]? = section.count > 16 ? [:] : nil
        func position(_ owner: String, _ type: UInt16) -> Int? {
            if let index { return index[Key(owner: owner, type: type)] }
            return sets.firstIndex { $0.type.rawValue == type && $0.owner == owner }
        }
        var signatures: [(owner: String, rrsig: RRSIGData)] = []
        for record in section where record.recordClass == DNSMessage.classIN {
            if record.type == .rrsig {
                if let raw = record.data.rawData, let rrsig = try? RRSIGData(rdata: raw) {
                    signatures.append((record.name, rrsig))
                }
                continue
            }
            if let at = position(record.name, record.type.rawValue) {
                sets[at].records.append(record)
            } else {
                index?[Key(owner: record.name, type: record.type.rawValue)] = sets.count
                sets.append(SignedRRset(owner: record.name, type: record.type, records: [record], signatures: []))
            }
        }
        for signature in signatures {
            if let at = position(signature.owner, signature.rrsig.typeCovered.rawValue) {
                sets[at].signatures.append(signature.rrsig)
            }
        }
        return sets
    }

    /// The signers named by the signatures, in order of appearance, without repeats.
    package var signers: [String] {
        guard self.signatures.count > 8 else {
            // The usual handful: compared in place, no set built.
            var names: [String] = []
            for rrsig in self.signatures where !names.contains(rrsig.signerName) { names.append(rrsig.signerName) }
            return names
        }
        var seen: Set<String> = []
        return self.signatures.map(\.signerName).filter { seen.insert($0).inserted }
    }

    package var label: String { "\(self.owner.isEmpty ? "." : self.owner)/\(self.type)" }
}
