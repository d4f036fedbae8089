import DNS

/// Validates what one lookup used from its responses: each RRset of the answer (every CNAME
/// of a chain included) against the keys of its signer, wildcard expansions with their
/// no-closer-match proof, and negative answers with their NSEC or NSEC3 proof.
package final class DNSSECValidator: Sendable {
    package let chain: DNSSECChainOfTrust
    package let limits: DNSSECLimits
    private let wallClock: @Sendable () -> Int64
    private var verified: VerifiedSignatureCache { self.chain.verified }

    package init(chain: DNSSECChainOfTrust, limits: DNSSECLimits, wallClock: @escaping @Sendable () -> Int64) {
        self.chain = chain
        self.limits = limits
        self.wallClock = wallClock
    }

    /// What one response contributed to a lookup.
    package struct Step: Sendable {
        package var message: DNSMessage
        /// RRsets of the answer section used: each CNAME followed, then the records asked for.
        package var rrsets: [DNSQuestion]
        /// The negative answer the lookup ended on, if it did.
        package var denial: (name: String, type: DNSRecordType, nxdomain: Bool)?

        package init(message: DNSMessage, rrsets: [DNSQuestion], denial: (name: String, type: DNSRecordType, nxdomain: Bool)?) {
            self.message = message
            self.rrsets = rrsets
            self.denial = denial
        }
    }

    package struct Verdict: Sendable {
        package var security: DNSSecurity
        /// The longest the answer may be cached or handed out: original TTLs and signature lives.
        package var ttl: UInt32? = nil
        /// For an indeterminate verdict, the failed fetch's error.
        package var fetchError: DNSError? = nil

        fileprivate static func rank(_ status: DNSSecurityStatus) -> Int {
            switch status {
            case .secure: return 0
            case .insecure: return 1
            case .indeterminate: return 2
            case .bogus: return 3
            }
        }

        /// Keeps the worse of the two; the first reason of the worst status wins.
        fileprivate mutating func merge(_ other: Verdict) {
            if let ttl = other.ttl { self.ttl = min(self.ttl ?? ttl, ttl) }
            if Self.rank(other.security.status) > Self.rank(self.security.status) {
                self.security = other.security
                self.fetchError = other.fetchError
            }
        }
    }

    package func validate(_ steps: [Step], trace: ValidationTrace?) async -> Verdict {
        let budget = ValidationBudget(limits: self.limits)
        var verdict = Verdict(security: .secure, ttl: nil, fetchError: nil)
        // By index: a `for step in steps` would copy each step (its message and all) first.
        for index in steps.indices {
            for rrset in steps[index].rrsets {
                verdict.merge(await self.validateRRset(rrset, in: steps[index].message, budget: budget, trace: trace))
                if verdict.security.status == .bogus { return verdict }
            }
            if let denial = steps[index].denial {
                verdict.merge(await self.validateDenial(denial.name, denial.type, nxdomain: denial.nxdomain,
                                                        in: steps[index].message, budget: budget, trace: trace))
            }
        }
        trace.note("result: \(verdict.security)")
        return verdict
    }

    private static func verdict(for trust: ZoneTrust) -> Verdict {
        switch trust {
        case .secure: return Verdict(security: .secure)
        case .insecure(let reason): return Verdict(security: DNSSecurity(.insecure, reason: reason))
        case .bogus(let reason): return Verdict(security: DNSSecurity(.bogus, reason: reason))
        case .indeterminate(let error):
            return Verdict(security: DNSSecurity(.indeterminate, reason: "DNSSEC validation could not complete: \(error)"),
                           fetchError: error)
        }
    }

    private static func show(_ name: String) -> String { name.isEmpty ? "." : name }

    private func verifier(_ budget: ValidationBudget, _ trace: ValidationTrace?) -> RRsetVerifier {
        RRsetVerifier(budget: budget, now: self.wallClock(), trace: trace, verified: self.verified)
    }

    private func validateRRset(_ question: DNSQuestion, in message: DNSMessage, budget: ValidationBudget,
                               trace: ValidationTrace?) async -> Verdict {
        guard let rrset = SignedRRset.group(message.answers).first(where: {
            $0.owner == question.name && $0.type == question.type
        }) else { return Verdict(security: .secure) }
        trace.note("\(rrset.label): \(rrset.records.count) record(s), \(rrset.signatures.count) RRSIG(s)")
        guard let signer = rrset.signers.first(where: { DenialNames.isAtOrBelow(rrset.owner, $0) }) else {
            if let other = rrset.signers.first {
                return Verdict(security: DNSSecurity(.bogus, reason: "RRSIG signer \(Self.show(other)) of \(rrset.label) is not an ancestor of the owner"))
            }
            // Unsigned: fine only below an unsigned delegation.
            let trust = await self.chain.trust(rrset.owner, budget: budget, trace: trace)
            if case .secure(let zone, _) = trust {
                return Verdict(security: DNSSecurity(.bogus, reason: "missing RRSIG for \(rrset.label) in signed zone \(Self.show(zone))"))
            }
            return Self.verdict(for: trust)
        }
        // A known zone (nearly every lookup) is checked without suspending.
        if let trust = self.chain.cachedTrust(signer, trace: trace) {
            return self.verifyRRset(rrset, signer: signer, trust: trust, in: message, budget: budget, trace: trace)
        }
        let trust = await self.chain.trust(signer, budget: budget, trace: trace)
        return self.verifyRRset(rrset, signer: signer, trust: trust, in: message, budget: budget, trace: trace)
    }

    /// The signature checks of one RRset once its signer's trust is known, and for a wildcard
    /// expansion the proof that no closer name exists.
    private func verifyRRset(_ rrset: SignedRRset, signer: String, trust: ZoneTrust, in message: DNSMessage,
                             budget: ValidationBudget, trace: ValidationTrace?) -> Verdict {
        guard case .secure(let zone, let keys) = trust else { return Self.verdict(for: trust) }
        guard zone == signer else {
            return Verdict(security: DNSSecurity(.bogus, reason: "RRSIG signer \(Self.show(signer)) of \(rrset.label) is not a zone apex"))
        }
        switch self.verifier(budget, trace).verify(rrset, zone: zone, keys: keys) {
        case .failed(let reason):
            return Verdict(security: DNSSecurity(.bogus, reason: reason))
        case .verified(let rrsig, let ttl):
            var verdict = Verdict(security: .secure, ttl: min(ttl, rrset.records.map(\.ttl).min() ?? ttl))
            let ownerLabels = (try? DNSCanonicalForm.labelCount(rrset.owner)) ?? 0
            guard Int(rrsig.labels) < ownerLabels else { return verdict }
            // A wildcard expansion: the owner must not exist, proven in the authority section.
            let encloser = Self.suffix(of: rrset.owner, labels: Int(rrsig.labels))
            trace.note("\(rrset.label): expanded from *.\(Self.show(encloser))")
            let proofSets = SignedRRset.group(message.authority)
            switch DenialProofSet.verify(proofSets, zone: zone, keys: keys, verifier: self.verifier(budget, trace)) {
            case .failure(let failure):
                verdict.security = DNSSecurity(.bogus, reason: failure.reason)
            case .success(let proof):
                switch proof.proveWildcardAnswer(rrset.owner, encloser: encloser, budget: budget) {
                case .proven(let text): trace.note("  wildcard proof: \(text)")
                case .insecure(let text): verdict.security = DNSSecurity(.insecure, reason: text)
                case .bogus(let text): verdict.security = DNSSecurity(.bogus, reason: text)
                }
            }
            return verdict
        }
    }

    /// The rightmost `labels` labels of `name`.
    private static func suffix(of name: String, labels: Int) -> String {
        var current = name
        while let count = try? DNSCanonicalForm.labelCount(current), count > labels {
            current = DNSName.parentZone(of: current)
        }
        return current
    }

    private func validateDenial(_ name: String, _ type: DNSRecordType, nxdomain: Bool, in message: DNSMessage,
                                budget: ValidationBudget, trace: ValidationTrace?) async -> Verdict {
        let what = "\(Self.show(name))/\(type)"
        let sets = SignedRRset.group(message.authority)
        let proofSets = sets.filter { $0.type == .nsec || $0.type == .nsec3 }
        let kind = proofSets.contains { $0.type == .nsec3 } ? "NSEC3" : "NSEC"
        guard let signer = proofSets.flatMap(\.signers).first(where: { DenialNames.isAtOrBelow(name, $0) }) else {
            // No signed proof: acceptable only in an unsigned zone. The SOA names the zone.
            let zoneHint = sets.first(where: { $0.type == .soa && DenialNames.isAtOrBelow(name, $0.owner) })?.owner ?? name
            let trust = await self.chain.trust(zoneHint, budget: budget, trace: trace)
            if case .secure = trust {
                return Verdict(security: DNSSecurity(.bogus, reason: "missing \(kind) proof for \(what)"))
            }
            return Self.verdict(for: trust)
        }
        let trust = await self.chain.trust(signer, budget: budget, trace: trace)
        guard case .secure(let zone, let keys) = trust else { return Self.verdict(for: trust) }
        guard zone == signer else {
            return Verdict(security: DNSSecurity(.bogus, reason: "\(kind) signer \(Self.show(signer)) for \(what) is not a zone apex"))
        }
        let proof: DenialProofSet
        switch DenialProofSet.verify(proofSets, zone: zone, keys: keys, verifier: self.verifier(budget, trace)) {
        case .failure(let failure): return Verdict(security: DNSSecurity(.bogus, reason: failure.reason))
        case .success(let verified): proof = verified
        }
        // The SOA whose MINIMUM sets the negative TTL must be the zone's own, signed (RFC 4035 §3.1.3).
        if let soa = sets.first(where: { $0.type == .soa && $0.owner == zone }) {
            if case .failed(let reason) = self.verifier(budget, trace).verify(soa, zone: zone, keys: keys) {
                return Verdict(security: DNSSecurity(.bogus, reason: reason))
            }
        }
        let outcome = nxdomain ? proof.proveNXDOMAIN(name, budget: budget) : proof.proveNODATA(name, type, budget: budget)
        let ttl = min(proof.ttl, DNSNetworkResolver.negativeTTL(message) ?? proof.ttl)
        switch outcome {
        case .proven(let text):
            trace.note("\(what): \(nxdomain ? "NXDOMAIN" : "NODATA") proven: \(text)")
            return Verdict(security: .secure, ttl: ttl)
        case .insecure(let text):
            trace.note("\(what): insecure: \(text)")
            return Verdict(security: DNSSecurity(.insecure, reason: text), ttl: ttl)
        case .bogus(let text):
            let reason = text.hasPrefix("missing") ? "\(text) (\(nxdomain ? "NXDOMAIN" : "NODATA") for \(what))" : text
            return Verdict(security: DNSSecurity(.bogus, reason: reason))
        }
    }
}

