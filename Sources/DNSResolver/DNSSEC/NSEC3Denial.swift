import DNS

/// Denial of existence with NSEC3 (RFC 5155 §8, RFC 9276): the NSEC3 records of one
/// response, already verified, and the proofs built from them. Hashing is charged to the
/// lookup's budget, so a flood of names or iterations ends bogus instead of burning CPU.
package final class NSEC3Denial {
    package struct Record: Sendable {
        package var owner: String
        package var ownerHash: [UInt8]
        package var data: NSEC3Data
    }

    package let zone: String
    package let records: [Record]
    private let budget: ValidationBudget
    private var hashes: [String: [UInt8]] = [:]
    /// Set when the parameters are past the RFC 9276 limit: every proof is then insecure.
    private let tooManyIterations: UInt16?

    /// Keeps the records of `zone` with SHA-1 hashes (the only algorithm defined) and the
    /// parameters of the first one; an owner whose first label is not a base32hex hash is dropped.
    package init(zone: String, records: [(owner: String, data: NSEC3Data)], budget: ValidationBudget) {
        var kept: [Record] = []
        var parameters: (UInt16, [UInt8])? = nil
        for (owner, data) in records where data.hashAlgorithm == 1 {
            guard DNSName.parentZone(of: owner) == zone,
                  let label = owner.split(separator: ".", maxSplits: 1).first,
                  let hash = Base32Hex.decode(label), hash.count == data.nextHashedOwner.count else { continue }
            if parameters == nil { parameters = (data.iterations, data.salt) }
            guard parameters! == (data.iterations, data.salt) else { continue }
            kept.append(Record(owner: owner, ownerHash: hash, data: data))
        }
        self.zone = zone
        self.records = kept
        self.budget = budget
        let iterations = parameters?.0 ?? 0
        self.tooManyIterations = Int(iterations) > budget.limits.maximumNSEC3Iterations ? iterations : nil
    }

    private enum HashError: Error { case budget }

    private func hash(_ name: String) throws(HashError) -> [UInt8] {
        if let known = self.hashes[name] { return known }
        guard let first = self.records.first, self.budget.takeHash(),
              let digest = DNSSECCrypto.nsec3Hash(name: name, salt: first.data.salt, iterations: Int(first.data.iterations))
        else { throw .budget }
        self.hashes[name] = digest
        return digest
    }

    private func matching(_ name: String) throws(HashError) -> Record? {
        let digest = try self.hash(name)
        return self.records.first { $0.ownerHash == digest }
    }

    private func covering(_ name: String) throws(HashError) -> Record? {
        let digest = try self.hash(name)
        return self.records.first { record in
            let owner = record.ownerHash
            let next = record.data.nextHashedOwner
            if owner.lexicographicallyPrecedes(next) {
                return owner.lexicographicallyPrecedes(digest) && digest.lexicographicallyPrecedes(next)
            }
            // The last span wraps around to the first hash.
            return owner.lexicographicallyPrecedes(digest) || digest.lexicographicallyPrecedes(next)
        }
    }

    private struct EncloserProof {
        var encloser: String
        var nextCloser: String
        var nextCloserCover: Record
    }

    /// RFC 5155 §8.3: the closest provable encloser (a matching NSEC3) and a covered next
    /// closer name. Nil when no ancestor matches or the next closer is not covered.
    private func closestEncloserProof(_ name: String) throws(HashError) -> EncloserProof? {
        for ancestor in DenialNames.selfAndAncestors(name, downTo: self.zone).dropFirst() {
            guard let match = try self.matching(ancestor) else { continue }
            // RFC 5155 §8.3: an encloser at a delegation or DNAME proves nothing below it.
            if match.data.types.contains(.ns) && !match.data.types.contains(.soa) { return nil }
            guard let nextCloser = DenialNames.nextCloser(name, encloser: ancestor),
                  let cover = try self.covering(nextCloser) else { return nil }
            return EncloserProof(encloser: ancestor, nextCloser: nextCloser, nextCloserCover: cover)
        }
        return nil
    }

    private func guarded(_ body: () throws(HashError) -> DenialOutcome) -> DenialOutcome {
        if let iterations = self.tooManyIterations {
            return .insecure("NSEC3 with \(iterations) iterations, over the RFC 9276 limit of \(self.budget.limits.maximumNSEC3Iterations)")
        }
        guard !self.records.isEmpty else { return .bogus("no usable NSEC3 record for zone \(self.zone)") }
        do {
            return try body()
        } catch {
            return .bogus("NSEC3 hash limit (\(self.budget.limits.nsec3HashesPerLookup) per lookup) reached")
        }
    }

    private static func lacks(_ types: DNSSECTypeBitmap, _ type: DNSRecordType) -> Bool {
        !types.contains(type) && (type == .cname || !types.contains(.cname))
    }

    package func proveNXDOMAIN(_ name: String) -> DenialOutcome {
        self.guarded { () throws(HashError) -> DenialOutcome in
            guard let proof = try self.closestEncloserProof(name) else {
                return .bogus("missing NSEC3 proof for \(name) (no closest encloser with a covered next closer name)")
            }
            let wildcard = DenialNames.wildcard(at: proof.encloser)
            guard try self.covering(wildcard) != nil else {
                return .bogus("missing NSEC3 proof that \(wildcard) does not exist")
            }
            if proof.nextCloserCover.data.isOptOut {
                return .insecure("next closer name \(proof.nextCloser) lies in an opt-out span")
            }
            return .proven("closest encloser \(proof.encloser), next closer \(proof.nextCloser) covered, \(wildcard) covered")
        }
    }

    package func proveNODATA(_ name: String, _ type: DNSRecordType) -> DenialOutcome {
        self.guarded { () throws(HashError) -> DenialOutcome in
            if let match = try self.matching(name) {
                guard Self.lacks(match.data.types, type) else {
                    return .bogus("NSEC3 for \(name) lists \(type), yet no \(type) was given")
                }
                return .proven("NSEC3 for \(name) lists \(match.data.types.description), not \(type)")
            }
            guard let proof = try self.closestEncloserProof(name) else {
                return .bogus("missing NSEC3 proof for \(name)/\(type)")
            }
            // RFC 5155 §8.6: a DS NODATA in an opt-out span is an unsigned delegation.
            if type == .ds && proof.nextCloserCover.data.isOptOut {
                return .insecure("\(name) lies in an opt-out span")
            }
            // §8.7: wildcard NODATA.
            let wildcard = DenialNames.wildcard(at: proof.encloser)
            if let match = try self.matching(wildcard), Self.lacks(match.data.types, type) {
                return .proven("closest encloser \(proof.encloser); NSEC3 for \(wildcard) lists no \(type)")
            }
            return .bogus("missing NSEC3 proof for \(name)/\(type)")
        }
    }

    /// RFC 5155 §8.8: a wildcard answer needs the next closer name (one label below the
    /// wildcard's closest encloser, which the RRSIG labels give) to be covered.
    package func proveWildcardAnswer(_ name: String, encloser: String) -> DenialOutcome {
        self.guarded { () throws(HashError) -> DenialOutcome in
            guard let nextCloser = DenialNames.nextCloser(name, encloser: encloser),
                  try self.covering(nextCloser) != nil else {
                return .bogus("missing NSEC3 proof that \(name) has no closer match than *.\(encloser)")
            }
            return .proven("next closer name \(nextCloser) covered")
        }
    }

    package func dsAbsence(_ name: String) -> DSAbsence {
        if let iterations = self.tooManyIterations {
            return .insecure("NSEC3 with \(iterations) iterations, over the RFC 9276 limit of \(self.budget.limits.maximumNSEC3Iterations)")
        }
        do {
            if let match = try self.matching(name) {
                let types = match.data.types
                if types.contains(.ds) { return .bogus("NSEC3 for \(name) lists DS, yet no DS was given") }
                if types.contains(.ns) && !types.contains(.soa) {
                    return .unsignedDelegation("NSEC3 for \(name) lists NS without DS")
                }
                return .notAZoneCut("NSEC3 for \(name) lists no NS")
            }
        } catch {
            return .bogus("NSEC3 hash limit (\(self.budget.limits.nsec3HashesPerLookup) per lookup) reached")
        }
        switch self.proveNODATA(name, .ds) {
        case .insecure(let text): return .unsignedDelegation(text)
        case .bogus: break
        case .proven(let text): return .notAZoneCut(text)
        }
        switch self.proveNXDOMAIN(name) {
        case .proven(let text): return .notAZoneCut(text)
        case .insecure(let text): return .unsignedDelegation(text)
        case .bogus(let text): return .bogus(text)
        }
    }
}
