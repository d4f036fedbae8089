import DNS

/// Checks the signatures of one RRset against the trusted keys of its signer's zone, with
/// every RRSIG check of RFC 4035 §5.3.1 and the work bounds of `DNSSECLimits`.
package struct RRsetVerifier: Sendable {
    package var budget: ValidationBudget
    /// The current Unix time.
    package var now: Int64
    package var trace: ValidationTrace?
    /// Signatures verified before (nil: verify everything every time).
    package var verified: VerifiedSignatureCache? = nil

    package enum Outcome: Sendable {
        /// A signature verified; `ttl` is what the records may live: at most the original TTL
        /// and the signature's remaining life.
        case verified(RRSIGData, ttl: UInt32)
        case failed(String)
    }

    package func verify(_ rrset: SignedRRset, zone: String, keys: [DNSKEYData]) -> Outcome {
        let limits = self.budget.limits
        guard !rrset.signatures.isEmpty else { return .failed("missing RRSIG for \(rrset.label)") }
        guard let ownerLabels = try? DNSCanonicalForm.labelCount(rrset.owner) else {
            return .failed("owner \(rrset.owner) cannot be put in canonical form")
        }
        let nowStamp = DNSSECTime.timestamp(unixSeconds: self.now)
        var reasons: [String] = []
        var tried = 0
        for rrsig in rrset.signatures {
            guard tried < limits.signaturesPerRRset else {
                reasons.append("more than \(limits.signaturesPerRRset) signatures tried")
                break
            }
            // Built only for a reason or a trace line: a verification that succeeds needs no text.
            var tag: String {
                "RRSIG \(rrset.label) by \(rrsig.signerName.isEmpty ? "." : rrsig.signerName) key \(rrsig.keyTag) (\(DNSSECAlgorithm.name(rrsig.algorithm)))"
            }
            guard rrsig.typeCovered == rrset.type else { continue }
            guard rrsig.signerName == zone, DenialNames.isAtOrBelow(rrset.owner, zone) else {
                reasons.append("\(tag): signer is not the zone \(zone.isEmpty ? "." : zone)")
                continue
            }
            guard Int(rrsig.labels) <= ownerLabels else {
                reasons.append("\(tag): labels field \(rrsig.labels) exceeds the owner's \(ownerLabels)")
                continue
            }
            guard DNSSECAlgorithm(rawValue: rrsig.algorithm) != nil else {
                reasons.append("\(tag): unsupported algorithm")
                continue
            }
            if DNSSECTime.isBefore(nowStamp, rrsig.inception) {
                let date = DNSSECTime.format(unixSeconds: DNSSECTime.unixSeconds(rrsig.inception, near: self.now))
                reasons.append("RRSIG not valid before \(date) for \(rrset.label)")
                self.trace.note("  \(tag): not valid before \(date)")
                continue
            }
            if DNSSECTime.isBefore(rrsig.expiration, nowStamp) {
                let date = DNSSECTime.format(unixSeconds: DNSSECTime.unixSeconds(rrsig.expiration, near: self.now))
                reasons.append("RRSIG expired \(date) for \(rrset.label)")
                self.trace.note("  \(tag): expired \(date)")
                continue
            }
            func isCandidate(_ key: DNSKEYData) -> Bool {
                key.keyTag == rrsig.keyTag && key.algorithm == rrsig.algorithm && key.protocolField == 3
                    && key.isZoneKey && !key.isRevoked
            }
            guard keys.contains(where: isCandidate) else {
                let zoneName = zone.isEmpty ? "." : zone
                let named = keys.first { $0.keyTag == rrsig.keyTag && $0.algorithm == rrsig.algorithm }
                let why: String
                if let named, named.isRevoked {
                    why = "DNSKEY \(rrsig.keyTag) of \(zoneName) is revoked"
                } else if let named, !named.isZoneKey {
                    why = "DNSKEY \(rrsig.keyTag) of \(zoneName) is not a zone key"
                } else {
                    why = "no trusted DNSKEY of \(zoneName) has that tag"
                }
                reasons.append("\(tag): \(why)")
                self.trace.note("  \(tag): \(why)")
                continue
            }
            tried += 1
            guard let data = try? DNSCanonicalForm.signedData(
                rrsig: rrsig, owner: rrset.owner, type: rrset.type, recordClass: DNSMessage.classIN,
                records: rrset.records.map(\.data)) else {
                reasons.append("\(tag): records cannot be put in canonical form")
                continue
            }
            // The first `keysPerKeyTag` candidates, taken in place (no filtered copy of the keys).
            var candidatesTried = 0
            for key in keys where isCandidate(key) {
                guard candidatesTried < limits.keysPerKeyTag else { break }
                candidatesTried += 1
                let cacheKey = self.verified.map { _ in
                    VerifiedSignatureCache.key(publicKey: key.rdata, signature: rrsig.signature, data: data)
                }
                if let cacheKey, self.verified!.contains(cacheKey) {
                    let remaining = UInt32(clamping: DNSSECTime.unixSeconds(rrsig.expiration, near: self.now) - self.now)
                    self.trace.note("  \(tag): verified (same signature verified before)")
                    return .verified(rrsig, ttl: min(rrsig.originalTTL, remaining))
                }
                guard self.budget.takeValidation() else {
                    return .failed("validation limit reached (\(limits.validationsPerLookup) signature checks per lookup) at \(rrset.label)")
                }
                switch key.verify(algorithm: rrsig.algorithm, signature: rrsig.signature, data: data) {
                case .success:
                    if let cacheKey { self.verified!.insert(cacheKey) }
                    let remaining = UInt32(clamping: DNSSECTime.unixSeconds(rrsig.expiration, near: self.now) - self.now)
                    self.trace.note("  \(tag): verified")
                    return .verified(rrsig, ttl: min(rrsig.originalTTL, remaining))
                case .failure(let failure):
                    let why: String
                    switch failure {
                    case .badSignature: why = "signature does not verify"
                    case .badKey(let text): why = text
                    case .unsupportedAlgorithm: why = "unsupported algorithm"
                    }
                    reasons.append("\(tag): \(why)")
                    self.trace.note("  \(tag): \(why)")
                }
            }
        }
        // The most telling reason first: a date beats "does not verify".
        let reason = reasons.first(where: { $0.hasPrefix("RRSIG expired") || $0.hasPrefix("RRSIG not valid") })
            ?? reasons.first ?? "no RRSIG covers \(rrset.label)"
        return .failed(reason)
    }
}
