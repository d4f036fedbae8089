import DNS

/// One RRset of a response (same owner, type and class) with the RRSIGs that cover it.
package struct SignedRRset: Sendable {
    package var owner: String
    package var type: DNSRecordType
    package var records: [DNSResourceRecord]
    package var signatures: [RRSIGData]

    /// The RRsets of `section`, RRSIGs attached to what they cover. Malformed RRSIGs are
    /// dropped (they could not verify anything), as are records of other classes.
    package static func group(_ section: [DNSResourceRecord]) -> [SignedRRset] {
        var order: [String] = []
        var sets: [String: SignedRRset] = [:]
        var signatures: [(String, RRSIGData)] = []
        for record in section where record.recordClass == DNSMessage.classIN {
            if record.type == .rrsig {
                if let raw = record.data.rawData, let rrsig = try? RRSIGData(rdata: raw) {
                    signatures.append((record.name, rrsig))
                }
                continue
            }
            let key = "\(record.type.rawValue) \(record.name)"
            if sets[key] == nil {
                order.append(key)
                sets[key] = SignedRRset(owner: record.name, type: record.type, records: [], signatures: [])
            }
            sets[key]!.records.append(record)
        }
        for (owner, rrsig) in signatures {
            let key = "\(rrsig.typeCovered.rawValue) \(owner)"
            sets[key]?.signatures.append(rrsig)
        }
        return order.map { sets[$0]! }
    }

    /// The signers named by the signatures, in order of appearance, without repeats.
    package var signers: [String] {
        var seen: Set<String> = []
        return self.signatures.map(\.signerName).filter { seen.insert($0).inserted }
    }

    package var label: String { "\(self.owner.isEmpty ? "." : self.owner)/\(self.type)" }
}
