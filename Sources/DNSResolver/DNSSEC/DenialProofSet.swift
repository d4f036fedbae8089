import DNS

/// The NSEC or NSEC3 records of one response whose signatures verified with their zone's
/// keys: the material for every denial proof. Unverified records never reach a proof.
package struct DenialProofSet: Sendable {
    package struct Failure: Error, Sendable {
        package var reason: String
    }

    /// At most this many NSEC/NSEC3 RRsets of one response are checked: a proof needs three.
    package static let maximumRecords = 8

    package var zone: String
    package var nsec: [NSECDenial.Record]
    package var nsec3: [(owner: String, data: NSEC3Data)]
    /// How long the proof may be cached: the records' TTLs capped by their signatures.
    package var ttl: UInt32

    package static func verify(_ sets: [SignedRRset], zone: String, keys: [DNSKEYData],
                               verifier: RRsetVerifier) -> Result<DenialProofSet, Failure> {
        var proof = DenialProofSet(zone: zone, nsec: [], nsec3: [], ttl: UInt32.max)
        let relevant = sets.filter {
            ($0.type == .nsec || $0.type == .nsec3) && DenialNames.isAtOrBelow($0.owner, zone)
                && $0.signatures.contains { $0.signerName == zone }
        }
        guard relevant.count <= Self.maximumRecords else {
            return .failure(Failure(reason: "\(relevant.count) NSEC/NSEC3 records in one response, over \(Self.maximumRecords)"))
        }
        for rrset in relevant {
            switch verifier.verify(rrset, zone: zone, keys: keys) {
            case .failed(let reason): return .failure(Failure(reason: reason))
            case .verified(_, let cap):
                proof.ttl = min(proof.ttl, cap, rrset.records.map(\.ttl).min() ?? 0)
            }
            for record in rrset.records {
                guard let raw = record.data.rawData else { continue }
                if rrset.type == .nsec, let data = try? NSECData(rdata: raw) {
                    proof.nsec.append(NSECDenial.Record(owner: record.name, data: data))
                } else if rrset.type == .nsec3, let data = try? NSEC3Data(rdata: raw) {
                    proof.nsec3.append((record.name, data))
                }
            }
        }
        if proof.ttl == UInt32.max { proof.ttl = 0 }
        return .success(proof)
    }

    package var isEmpty: Bool { self.nsec.isEmpty && self.nsec3.isEmpty }

    private func nsec3Denial(_ budget: ValidationBudget) -> NSEC3Denial {
        NSEC3Denial(zone: self.zone, records: self.nsec3, budget: budget)
    }

    package func proveNXDOMAIN(_ name: String, budget: ValidationBudget) -> DenialOutcome {
        if !self.nsec.isEmpty { return NSECDenial(records: self.nsec).proveNXDOMAIN(name) }
        if !self.nsec3.isEmpty { return self.nsec3Denial(budget).proveNXDOMAIN(name) }
        return .bogus("missing NSEC or NSEC3 proof for \(name)")
    }

    package func proveNODATA(_ name: String, _ type: DNSRecordType, budget: ValidationBudget) -> DenialOutcome {
        if !self.nsec.isEmpty { return NSECDenial(records: self.nsec).proveNODATA(name, type) }
        if !self.nsec3.isEmpty { return self.nsec3Denial(budget).proveNODATA(name, type) }
        return .bogus("missing NSEC or NSEC3 proof for \(name)/\(type)")
    }

    package func proveWildcardAnswer(_ name: String, encloser: String, budget: ValidationBudget) -> DenialOutcome {
        if !self.nsec.isEmpty { return NSECDenial(records: self.nsec).proveWildcardAnswer(name) }
        if !self.nsec3.isEmpty { return self.nsec3Denial(budget).proveWildcardAnswer(name, encloser: encloser) }
        return .bogus("missing NSEC or NSEC3 proof that \(name) has no closer match than the wildcard")
    }

    package func dsAbsence(_ name: String, budget: ValidationBudget) -> DSAbsence {
        if !self.nsec.isEmpty { return NSECDenial(records: self.nsec).dsAbsence(name) }
        if !self.nsec3.isEmpty { return self.nsec3Denial(budget).dsAbsence(name) }
        return .bogus("missing NSEC or NSEC3 proof for \(name)/DS")
    }
}
