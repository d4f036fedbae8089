import DNS

/// Denial of existence with NSEC (RFC 4035 §5.4, RFC 6840 §4): the NSEC records of one
/// response, already verified, and the proofs built from them.
package struct NSECDenial: Sendable {
    package struct Record: Sendable {
        package var owner: String
        package var data: NSECData
    }

    package let records: [Record]

    package init(records: [Record]) { self.records = records }

    /// True when the span of `record` holds `name` strictly inside it. A parent's NSEC at a
    /// delegation (NS without SOA) says nothing about names below the cut (RFC 6840 §4.1).
    package static func covers(_ record: Record, _ name: String) -> Bool {
        let owner = record.owner
        let next = record.data.nextName
        guard owner != name else { return false }
        if record.data.types.contains(.ns) && !record.data.types.contains(.soa)
            && DenialNames.isAtOrBelow(name, owner) { return false }
        if record.data.types.contains(DNSRecordType(rawValue: 39)) && DenialNames.isAtOrBelow(name, owner) {
            return false  // DNAME: names below are redirected, not absent
        }
        let afterOwner = DNSCanonicalForm.precedes(owner, name)
        let beforeNext = DNSCanonicalForm.precedes(name, next)
        if DNSCanonicalForm.precedes(owner, next) { return afterOwner && beforeNext }
        // The last NSEC of the zone wraps around to the apex.
        return afterOwner || beforeNext
    }

    package func matching(_ name: String) -> Record? { self.records.first { $0.owner == name } }
    package func covering(_ name: String) -> Record? { self.records.first { Self.covers($0, name) } }

    /// The closest encloser implied by a covering NSEC: the longest ancestor of `name`
    /// shared with the span's owner or next name.
    private static func closestEncloser(_ name: String, _ record: Record) -> String {
        for ancestor in DenialNames.selfAndAncestors(name, downTo: "").dropFirst() {
            if DenialNames.isAtOrBelow(record.owner, ancestor) || DenialNames.isAtOrBelow(record.data.nextName, ancestor) {
                return ancestor
            }
        }
        return ""
    }

    private static func lacks(_ types: DNSSECTypeBitmap, _ type: DNSRecordType) -> Bool {
        !types.contains(type) && (type == .cname || !types.contains(.cname))
    }

    package func proveNXDOMAIN(_ name: String) -> DenialOutcome {
        guard let cover = self.covering(name) else { return .bogus("missing NSEC proof for \(name)") }
        let encloser = Self.closestEncloser(name, cover)
        let wildcard = DenialNames.wildcard(at: encloser)
        guard let wildcardCover = self.covering(wildcard) else {
            return .bogus("missing NSEC proof that \(wildcard) does not exist")
        }
        return .proven("NSEC \(cover.owner) -> \(cover.data.nextName) covers \(name); "
            + "NSEC \(wildcardCover.owner) -> \(wildcardCover.data.nextName) covers \(wildcard)")
    }

    package func proveNODATA(_ name: String, _ type: DNSRecordType) -> DenialOutcome {
        if let match = self.matching(name) {
            guard Self.lacks(match.data.types, type) else {
                return .bogus("NSEC at \(name) lists \(type), yet no \(type) was given")
            }
            if type == .ds && match.data.types.contains(.soa) && !name.isEmpty {
                return .bogus("the NSEC denying DS at \(name) is the child's, not the parent's")
            }
            return .proven("NSEC at \(name) lists \(match.data.types.description), not \(type)")
        }
        // Wildcard NODATA (RFC 4035 §3.1.3.4): the name is absent and so is the type at *.CE.
        if let cover = self.covering(name) {
            let wildcard = DenialNames.wildcard(at: Self.closestEncloser(name, cover))
            if let match = self.matching(wildcard), Self.lacks(match.data.types, type) {
                return .proven("NSEC covers \(name); NSEC at \(wildcard) lists no \(type)")
            }
        }
        return .bogus("missing NSEC proof for \(name)/\(type)")
    }

    /// The no-closer-match proof of a wildcard answer: `name` itself does not exist.
    package func proveWildcardAnswer(_ name: String) -> DenialOutcome {
        guard let cover = self.covering(name) else { return .bogus("missing NSEC proof that \(name) has no closer match than the wildcard") }
        return .proven("NSEC \(cover.owner) -> \(cover.data.nextName) covers \(name)")
    }

    package func dsAbsence(_ name: String) -> DSAbsence {
        if let match = self.matching(name) {
            let types = match.data.types
            if types.contains(.ds) { return .bogus("NSEC at \(name) lists DS, yet no DS was given") }
            if types.contains(.ns) && !types.contains(.soa) {
                return .unsignedDelegation("NSEC at \(name) lists NS without DS")
            }
            if types.contains(.soa) && !name.isEmpty {
                return .bogus("the NSEC denying DS at \(name) is the child's, not the parent's")
            }
            return .notAZoneCut("NSEC at \(name) lists no NS")
        }
        switch self.proveNXDOMAIN(name) {
        case .proven(let text): return .notAZoneCut(text)
        case .insecure(let text): return .insecure(text)
        case .bogus(let text): return .bogus(text)
        }
    }
}
