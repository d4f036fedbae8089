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
        // Every zone involved already trusted (nearly every lookup): checked in one
        // synchronous pass, without an async frame per RRset. A traced lookup takes the
        // general path, so that its trace is written once.
        if trace == nil, let verdict = self.validateWithCachedTrust(steps) { return verdict }
        let budget = ValidationBudget(limits: self.limits)
        var verdict = Verdict(security: .secure, ttl: nil, fetchError: nil)
        // By index: a `for step in steps` would copy each step (its message and all) first.
        for index in steps.indices {
            let message = steps[index].message
            for question in steps[index].rrsets {
                let outcome: Verdict
                switch self.plan(question, in: message) {
                case .done(let done): outcome = done
                case .unsigned(let rrset):
                    trace.note("\(rrset.label): \(rrset.records.count) record(s), 0 RRSIG(s)")
                    let trust = await self.chain.trust(rrset.owner, budget: budget, trace: trace)
                    outcome = Self.unsignedVerdict(rrset, trust: trust)
                case .signed(let rrset, let signer):
                    trace.note("\(rrset.label): \(rrset.records.count) record(s), \(rrset.signatures.count) RRSIG(s)")
                    let trust = await self.chain.trust(signer, budget: budget, trace: trace)
                    outcome = self.verifyRRset(rrset, signer: signer, trust: trust, in: message, budget: budget, trace: trace)
                }
                verdict.merge(outcome)
                if verdict.security.status == .bogus { return verdict }
            }
            if let denial = steps[index].denial {
                let plan = Self.plan(denial: denial.name, denial.type, nxdomain: denial.nxdomain, in: message)
                let trust = await self.chain.trust(plan.trustName, budget: budget, trace: trace)
                verdict.merge(self.finishDenial(plan, trust: trust, in: message, budget: budget, trace: trace))
            }
        }
        trace.note("result: \(verdict.security)")
        return verdict
    }

    /// `validate` when the trust of every zone it needs is cached; nil as soon as one is not
    /// (the caller then runs the general path, which fetches it; signatures verified here
    /// are in the verified-signature cache by then).
    private func validateWithCachedTrust(_ steps: [Step]) -> Verdict? {
        let budget = ValidationBudget(limits: self.limits)
        var verdict = Verdict(security: .secure, ttl: nil, fetchError: nil)
        for index in steps.indices {
            let message = steps[index].message
            for question in steps[index].rrsets {
                let outcome: Verdict
                switch self.plan(question, in: message) {
                case .done(let done): outcome = done
                case .unsigned(let rrset):
                    guard let trust = self.chain.cachedTrust(rrset.owner, trace: nil) else { return nil }
                    outcome = Self.unsignedVerdict(rrset, trust: trust)
                case .signed(let rrset, let signer):
                    guard let trust = self.chain.cachedTrust(signer, trace: nil) else { return nil }
                    outcome = self.verifyRRset(rrset, signer: signer, trust: trust, in: message, budget: budget, trace: nil)
                }
                verdict.merge(outcome)
                if verdict.security.status == .bogus { return verdict }
            }
            if let denial = steps[index].denial {
                let plan = Self.plan(denial: denial.name, denial.type, nxdomain: denial.nxdomain, in: message)
                guard let trust = self.chain.cachedTrust(plan.trustName, trace: nil) else { return nil }
                verdict.merge(self.finishDenial(plan, trust: trust, in: message, budget: budget, trace: nil))
            }
        }
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

    /// What checking one RRset of the answer needs: nothing more (a verdict already), the
    /// trust of the zone holding an unsigned RRset, or the trust of its signer.
    private enum RRsetPlan {
        case done(Verdict)
        case unsigned(SignedRRset)
        case signed(SignedRRset, signer: String)
    }

    private func plan(_ question: DNSQuestion, in message: DNSMessage) -> RRsetPlan {
        guard let rrset = SignedRRset.group(message.answers).first(where: {
            $0.owner == question.name && $0.type == question.type
        }) else { return .done(Verdict(security: .secure)) }
        guard let signer = rrset.signers.first(where: { DenialNames.isAtOrBelow(rrset.owner, $0) }) else {
            if let other = rrset.signers.first {
                return .done(Verdict(security: DNSSecurity(.bogus, reason: "RRSIG signer \(Self.show(other)) of \(rrset.label) is not an ancestor of the owner")))
            }
            return .unsigned(rrset)
        }
        return .signed(rrset, signer: signer)
    }

    /// An unsigned RRset is fine only below an unsigned delegation.
    private static func unsignedVerdict(_ rrset: SignedRRset, trust: ZoneTrust) -> Verdict {
        if case .secure(let zone, _) = trust {
            return Verdict(security: DNSSecurity(.bogus, reason: "missing RRSIG for \(rrset.label) in signed zone \(Self.show(zone))"))
        }
        return Self.verdict(for: trust)
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

    /// What checking a negative answer needs: the trust of the signer of its proof, or with
    /// no signed proof, of the zone its SOA names (the proof is then missing unless that zone
    /// is unsigned).
    private struct DenialPlan {
        var name: String
        var type: DNSRecordType
        var nxdomain: Bool
        var sets: [SignedRRset]
        var proofSets: [SignedRRset]
        var kind: String
        /// The proof's signer; nil when no signed proof was given.
        var signer: String?
        var trustName: String
        var what: String { "\(DNSSECValidator.show(self.name))/\(self.type)" }
    }

    private static func plan(denial name: String, _ type: DNSRecordType, nxdomain: Bool, in message: DNSMessage) -> DenialPlan {
        let sets = SignedRRset.group(message.authority)
        let proofSets = sets.filter { $0.type == .nsec || $0.type == .nsec3 }
        let kind = proofSets.contains { $0.type == .nsec3 } ? "NSEC3" : "NSEC"
        let signer = proofSets.flatMap(\.signers).first(where: { DenialNames.isAtOrBelow(name, $0) })
        let zoneHint = sets.first(where: { $0.type == .soa && DenialNames.isAtOrBelow(name, $0.owner) })?.owner ?? name
        return DenialPlan(name: name, type: type, nxdomain: nxdomain, sets: sets, proofSets: proofSets, kind: kind,
                          signer: signer, trustName: signer ?? zoneHint)
    }

    private func finishDenial(_ plan: DenialPlan, trust: ZoneTrust, in message: DNSMessage, budget: ValidationBudget,
                              trace: ValidationTrace?) -> Verdict {
        let (name, type, nxdomain, sets, kind, what) = (plan.name, plan.type, plan.nxdomain, plan.sets, plan.kind, plan.what)
        guard let signer = plan.signer else {
            // No signed proof: acceptable only in an unsigned zone.
            if case .secure = trust {
                return Verdict(security: DNSSecurity(.bogus, reason: "missing \(kind) proof for \(what)"))
            }
            return Self.verdict(for: trust)
        }
        guard case .secure(let zone, let keys) = trust else { return Self.verdict(for: trust) }
        guard zone == signer else {
            return Verdict(security: DNSSecurity(.bogus, reason: "\(kind) signer \(Self.show(signer)) for \(what) is not a zone apex"))
        }
        let proof: DenialProofSet
        switch DenialProofSet.verify(plan.proofSets, zone: zone, keys: keys, verifier: self.verifier(budget, trace)) {
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

