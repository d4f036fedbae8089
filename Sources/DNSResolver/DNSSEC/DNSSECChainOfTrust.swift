import DNS
import NIOConcurrencyHelpers
import NIOCore

/// Builds chains of trust from the anchors down to a zone, fetching DS and DNSKEY records
/// through the resolver's own servers and transport, and caches each zone's trust for the
/// TTL of the records it rests on.
package final class DNSSECChainOfTrust: Sendable {
    package typealias Fetch = @Sendable (DNSQuestion) async -> Result<DNSMessage, DNSError>

    private struct CachedTrust {
        var trust: ZoneTrust
        var expiresAt: NIODeadline
        /// When it was stored, among all stores: matches its place in `TrustCache.order`.
        var sequence: Int
    }

    /// The trust of the names asked about, oldest stored evicted first beyond `capacity`.
    /// Names are what the validator asks for: zone apexes, but also the owner of every
    /// unsigned answer (a sender's domain under an unsigned zone), each kept up to a day, so
    /// without a bound a stream of new sender domains would grow it without end.
    private struct TrustCache {
        var entries: [String: CachedTrust] = [:]
        /// Names in the order stored, with their store's sequence: an entry stored again, or
        /// dropped as expired, leaves a marker that no longer matches and is skipped.
        var order = CircularBuffer<(name: String, sequence: Int)>()
        var sequence = 0
    }

    /// Bogus results are kept only this long, so a fixed zone recovers quickly (RFC 4035 §4.7).
    static let bogusCacheSeconds: UInt32 = 60
    /// Longest any zone's trust is kept, whatever its TTLs.
    static let maximumCacheSeconds: UInt32 = 86400

    package let anchors: DNSTrustAnchors
    private let fetch: Fetch
    private let clock: @Sendable () -> NIODeadline
    private let wallClock: @Sendable () -> Int64
    private let cache = NIOLockedValueBox(TrustCache())
    /// The most names whose trust is kept.
    package let capacity: Int
    /// Zones whose trust is being computed, with the lookups waiting for it.
    private let inFlight = NIOLockedValueBox([String: [CheckedContinuation<ZoneTrust?, Never>]]())
    /// Signatures verified before, shared with the answer validator.
    package let verified = VerifiedSignatureCache()

    package init(anchors: DNSTrustAnchors, fetch: @escaping Fetch,
                 clock: @escaping @Sendable () -> NIODeadline, wallClock: @escaping @Sendable () -> Int64,
                 capacity: Int = 10_000) {
        self.anchors = anchors
        self.capacity = max(1, capacity)
        self.fetch = fetch
        self.clock = clock
        self.wallClock = wallClock
    }

    package func removeAll() { self.cache.withLockedValue { $0 = TrustCache() } }

    /// How many names' trust is kept now.
    package var cachedCount: Int { self.cache.withLockedValue { $0.entries.count } }

    private func cached(_ name: String) -> ZoneTrust? {
        let now = self.clock()
        return self.cache.withLockedValue { cache in
            guard let entry = cache.entries[name] else { return nil }
            guard now < entry.expiresAt else {
                cache.entries[name] = nil
                return nil
            }
            return entry.trust
        }
    }

    private func store(_ trust: ZoneTrust, for name: String, ttl: UInt32) {
        let seconds: UInt32
        switch trust {
        case .indeterminate: return
        case .bogus: seconds = min(ttl, Self.bogusCacheSeconds)
        default: seconds = min(ttl, Self.maximumCacheSeconds)
        }
        guard seconds > 0 else { return }
        let expiry = self.clock() + .seconds(Int64(seconds))
        let capacity = self.capacity
        self.cache.withLockedValue { cache in
            cache.sequence += 1
            cache.entries[name] = CachedTrust(trust: trust, expiresAt: expiry, sequence: cache.sequence)
            cache.order.append((name, cache.sequence))
            // Markers are at least as many as entries, so this bounds both.
            while cache.order.count > capacity {
                let oldest = cache.order.removeFirst()
                if cache.entries[oldest.name]?.sequence == oldest.sequence { cache.entries[oldest.name] = nil }
            }
        }
    }

    private func verifier(_ budget: ValidationBudget, _ trace: ValidationTrace?) -> RRsetVerifier {
        RRsetVerifier(budget: budget, now: self.wallClock(), trace: trace, verified: self.verified)
    }

    private static func show(_ name: String) -> String { name.isEmpty ? "." : name }

    /// The trust of the zone holding `name` when it is cached: no suspension, no task frame,
    /// which is what nearly every lookup of a known zone needs.
    package func cachedTrust(_ name: String, trace: ValidationTrace?) -> ZoneTrust? {
        guard let known = self.cached(name) else { return nil }
        if case .secure(let zone, let keys) = known {
            trace.note("\(Self.show(name)): cached, zone \(Self.show(zone)) with \(keys.count) trusted keys")
        } else {
            trace.note("\(Self.show(name)): cached \(known)")
        }
        return known
    }

    /// The trust of the zone holding `name` (a zone apex or any name inside a zone).
    package func trust(_ name: String, budget: ValidationBudget, trace: ValidationTrace?) async -> ZoneTrust {
        if let known = self.cachedTrust(name, trace: trace) { return known }
        guard trace == nil else {
            // A traced lookup does its own work, so that every step shows.
            let (trust, ttl) = await self.computeTrust(name, budget: budget, trace: trace)
            self.store(trust, for: name, ttl: ttl)
            return trust
        }
        // Lookups arriving together for a zone not yet known share one computation: a burst
        // of mail from a new domain fetches its DS and DNSKEY once, not once per lookup.
        let leads = self.inFlight.withLockedValue { running -> Bool in
            guard running[name] == nil else { return false }
            running[name] = []
            return true
        }
        if leads {
            let (trust, ttl) = await self.computeTrust(name, budget: budget, trace: nil)
            self.store(trust, for: name, ttl: ttl)
            let waiters = self.inFlight.withLockedValue { $0.removeValue(forKey: name) ?? [] }
            for waiter in waiters { waiter.resume(returning: trust) }
            return trust
        }
        let shared = await withCheckedContinuation { (continuation: CheckedContinuation<ZoneTrust?, Never>) in
            let waiting = self.inFlight.withLockedValue { running -> Bool in
                guard running[name] != nil else { return false }
                running[name]!.append(continuation)
                return true
            }
            if !waiting { continuation.resume(returning: nil) }
        }
        if let shared { return shared }
        // The computation finished between the two locks: it is cached (or was not cacheable).
        return await self.trust(name, budget: budget, trace: nil)
    }

    private func computeTrust(_ name: String, budget: ValidationBudget, trace: ValidationTrace?) async -> (ZoneTrust, UInt32) {
        if let anchor = self.anchors.zones[name] {
            trace.note("\(Self.show(name)): trust anchor with \(anchor.ds.count) DS and \(anchor.keys.count) DNSKEY")
            return await self.keysFromDS(name, ds: anchor.ds, anchorKeys: anchor.keys, budget: budget, trace: trace)
        }
        guard self.anchors.closestZone(to: name) != nil else {
            return (.insecure("no trust anchor covers \(Self.show(name))"), Self.maximumCacheSeconds)
        }
        let message: DNSMessage
        switch await self.fetch(DNSQuestion(name: name, type: .ds)) {
        case .failure(let error):
            trace.note("\(Self.show(name))/DS: fetch failed: \(error)")
            return (.indeterminate(error), 0)
        case .success(let reply):
            message = reply
        }
        let sets = SignedRRset.group(message.answers)
        if let dsSet = sets.first(where: { $0.owner == name && $0.type == .ds }) {
            return await self.trustFromDS(name, dsSet: dsSet, budget: budget, trace: trace)
        }
        if !name.isEmpty, sets.contains(where: { $0.owner == name && $0.type == .cname }) {
            // A CNAME cannot sit at a zone cut: the name lies inside its parent's zone. Taking
            // this unverified can only make validation stricter (the parent's keys), never weaker.
            trace.note("\(Self.show(name)): CNAME, not a zone cut")
            let parent = await self.trust(DNSName.parentZone(of: name), budget: budget, trace: trace)
            return (parent, Self.maximumCacheSeconds)
        }
        return await self.trustFromDSDenial(name, message: message, budget: budget, trace: trace)
    }

    /// The parent's trust when a record that should be signed is not: bogus below a secure
    /// zone, the parent's own status otherwise.
    private func unsignedBelow(_ name: String, what: String, budget: ValidationBudget,
                               trace: ValidationTrace?) async -> (ZoneTrust, UInt32) {
        guard !name.isEmpty else { return (.bogus("missing \(what)"), Self.bogusCacheSeconds) }
        let parent = await self.trust(DNSName.parentZone(of: name), budget: budget, trace: trace)
        if case .secure = parent { return (.bogus("missing \(what)"), Self.bogusCacheSeconds) }
        return (parent, Self.maximumCacheSeconds)
    }

    /// The trust of `signer`, which must be a proper ancestor of `name` and a zone apex.
    private func parentKeys(of name: String, signer: String, budget: ValidationBudget,
                            trace: ValidationTrace?) async -> Result<[DNSKEYData], ZoneTrustFailure> {
        guard signer != name, DenialNames.isAtOrBelow(name, signer) else {
            return .failure(.trust(.bogus("records for \(Self.show(name)) signed by \(Self.show(signer)), not a parent zone")))
        }
        let parent = await self.trust(signer, budget: budget, trace: trace)
        guard case .secure(let zone, let keys) = parent else { return .failure(.trust(parent)) }
        guard zone == signer else {
            return .failure(.trust(.bogus("signer \(Self.show(signer)) is not a zone apex (its zone is \(Self.show(zone)))")))
        }
        return .success(keys)
    }

    private enum ZoneTrustFailure: Error { case trust(ZoneTrust) }

    private func trustFromDS(_ name: String, dsSet: SignedRRset, budget: ValidationBudget,
                             trace: ValidationTrace?) async -> (ZoneTrust, UInt32) {
        guard let signer = dsSet.signers.first else {
            return await self.unsignedBelow(name, what: "RRSIG for \(dsSet.label)", budget: budget, trace: trace)
        }
        let keys: [DNSKEYData]
        switch await self.parentKeys(of: name, signer: signer, budget: budget, trace: trace) {
        case .success(let found): keys = found
        case .failure(.trust(let trust)): return (trust, Self.maximumCacheSeconds)
        }
        let ttl: UInt32
        switch self.verifier(budget, trace).verify(dsSet, zone: signer, keys: keys) {
        case .failed(let reason): return (.bogus(reason), Self.bogusCacheSeconds)
        case .verified(_, let cap): ttl = min(cap, dsSet.records.map(\.ttl).min() ?? 0)
        }
        let ds = dsSet.records.compactMap { record in record.data.rawData.flatMap { try? DSData(rdata: $0) } }
        trace.note("\(Self.show(name)): DS " + ds.map { "\($0.keyTag)/\(DNSSECAlgorithm.name($0.algorithm))/digest \($0.digestType)" }.joined(separator: ", "))
        let (trust, keyTTL) = await self.keysFromDS(name, ds: ds, anchorKeys: [], budget: budget, trace: trace)
        return (trust, min(ttl, keyTTL))
    }

    private func trustFromDSDenial(_ name: String, message: DNSMessage, budget: ValidationBudget,
                                   trace: ValidationTrace?) async -> (ZoneTrust, UInt32) {
        let authority = SignedRRset.group(message.authority)
        let proofSets = authority.filter { $0.type == .nsec || $0.type == .nsec3 }
        guard let signer = proofSets.flatMap(\.signers).first(where: { $0 != name }) ?? proofSets.flatMap(\.signers).first else {
            return await self.unsignedBelow(name, what: "NSEC or NSEC3 proof for \(Self.show(name))/DS",
                                            budget: budget, trace: trace)
        }
        let keys: [DNSKEYData]
        switch await self.parentKeys(of: name, signer: signer, budget: budget, trace: trace) {
        case .success(let found): keys = found
        case .failure(.trust(let trust)): return (trust, Self.maximumCacheSeconds)
        }
        let proof: DenialProofSet
        switch DenialProofSet.verify(proofSets, zone: signer, keys: keys, verifier: self.verifier(budget, trace)) {
        case .failure(let failure): return (.bogus(failure.reason), Self.bogusCacheSeconds)
        case .success(let verified): proof = verified
        }
        let absence = proof.dsAbsence(name, budget: budget)
        let ttl = min(DNSNetworkResolver.negativeTTL(message) ?? 300, proof.ttl)
        switch absence {
        case .notAZoneCut(let text):
            trace.note("\(Self.show(name)): no DS, not a zone cut (\(text)); inside \(Self.show(signer))")
            return (.secure(zone: signer, keys: keys), ttl)
        case .unsignedDelegation(let text):
            trace.note("\(Self.show(name)): unsigned delegation (\(text))")
            return (.insecure("unsigned delegation at \(Self.show(name))"), ttl)
        case .insecure(let text):
            trace.note("\(Self.show(name)): insecure (\(text))")
            return (.insecure(text), ttl)
        case .bogus(let text):
            return (.bogus(text), Self.bogusCacheSeconds)
        }
    }

    /// Fetches the zone's DNSKEY set and trusts it when a DS (or anchor key) matches a key that
    /// signs the set.
    private func keysFromDS(_ zone: String, ds: [DSData], anchorKeys: [DNSKEYData], budget: ValidationBudget,
                            trace: ValidationTrace?) async -> (ZoneTrust, UInt32) {
        let supported = ds.filter {
            DNSSECAlgorithm(rawValue: $0.algorithm) != nil && DSDigestType(rawValue: $0.digestType) != nil
        }
        let usableAnchors = anchorKeys.filter { DNSSECAlgorithm(rawValue: $0.algorithm) != nil }
        guard !supported.isEmpty || !usableAnchors.isEmpty else {
            trace.note("\(Self.show(zone)): every DS uses an unsupported algorithm or digest: insecure")
            return (.insecure("the DS records of \(Self.show(zone)) use only unsupported algorithms or digests"),
                    Self.maximumCacheSeconds)
        }
        let message: DNSMessage
        switch await self.fetch(DNSQuestion(name: zone, type: .dnskey)) {
        case .failure(let error):
            trace.note("\(Self.show(zone))/DNSKEY: fetch failed: \(error)")
            return (.indeterminate(error), 0)
        case .success(let reply):
            message = reply
        }
        guard let keySet = SignedRRset.group(message.answers).first(where: { $0.owner == zone && $0.type == .dnskey }) else {
            return (.bogus("no DNSKEY records for \(Self.show(zone))"), Self.bogusCacheSeconds)
        }
        let keys = keySet.records.compactMap { record in record.data.rawData.flatMap { try? DNSKEYData(rdata: $0) } }
        trace.note("\(Self.show(zone)): DNSKEY " + keys.map {
            "\($0.keyTag)/\(DNSSECAlgorithm.name($0.algorithm))\($0.isSecureEntryPoint ? " (KSK)" : "")\($0.isRevoked ? " (revoked)" : "")"
        }.joined(separator: ", "))

        // Keys vouched for by a DS (digest matches) or equal to an anchor key.
        var entryKeys: [DNSKEYData] = []
        for anchor in usableAnchors where keys.contains(where: { $0.rdata == anchor.rdata }) {
            entryKeys.append(anchor)
        }
        for record in supported {
            let candidates = keys.filter {
                $0.keyTag == record.keyTag && $0.algorithm == record.algorithm && $0.isZoneKey && !$0.isRevoked
            }.prefix(budget.limits.keysPerKeyTag)
            for key in candidates {
                guard budget.takeValidation() else {
                    return (.bogus("validation limit reached (\(budget.limits.validationsPerLookup) checks per lookup) matching DS of \(Self.show(zone))"),
                            Self.bogusCacheSeconds)
                }
                if DNSSECCrypto.dsDigest(owner: zone, key: key, digestType: record.digestType) == record.digest {
                    trace.note("\(Self.show(zone)): DS \(record.keyTag) matches DNSKEY \(key.keyTag)")
                    if !entryKeys.contains(key) { entryKeys.append(key) }
                }
            }
        }
        guard !entryKeys.isEmpty else {
            let what = usableAnchors.isEmpty ? "no DS" : "no trust anchor"
            return (.bogus("\(what) matches a DNSKEY of \(Self.show(zone))"), Self.bogusCacheSeconds)
        }
        switch self.verifier(budget, trace).verify(keySet, zone: zone, keys: entryKeys) {
        case .failed(let reason):
            return (.bogus(reason), Self.bogusCacheSeconds)
        case .verified(_, let cap):
            // Every key of the verified set: the RRSIG checks skip revoked and non-zone keys
            // themselves, and can then say so.
            return (.secure(zone: zone, keys: keys), min(cap, keySet.records.map(\.ttl).min() ?? 0))
        }
    }
}
