import Crypto
import DNS
import DNSResolver

/// A DNSSEC signing key made in the test (P-256 or Ed25519), or a key that only claims an
/// algorithm (for unsupported algorithms and KeyTrap-style key floods).
package struct TestSigningKey: Sendable {
    package enum Material: Sendable {
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        /// No private key: signatures are random bytes.
        case fake
    }

    package var material: Material
    package var dnskey: DNSKEYData

    package static func p256(ksk: Bool = false) -> TestSigningKey {
        let key = P256.Signing.PrivateKey()
        return TestSigningKey(material: .p256(key), dnskey: DNSKEYData(flags: ksk ? 257 : 256, algorithm: 13,
                                                                       publicKey: Array(key.publicKey.rawRepresentation)))
    }

    package static func ed25519(ksk: Bool = false) -> TestSigningKey {
        let key = Curve25519.Signing.PrivateKey()
        return TestSigningKey(material: .ed25519(key), dnskey: DNSKEYData(flags: ksk ? 257 : 256, algorithm: 15,
                                                                          publicKey: Array(key.publicKey.rawRepresentation)))
    }

    /// An Ed25519 key made from `seed` (the same key every time): its signatures, and so a
    /// zone's replies, are the same byte for byte from one process to the next.
    package static func ed25519(seed: UInt8, ksk: Bool = false) -> TestSigningKey {
        let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: seed, count: 32))
        return TestSigningKey(material: .ed25519(key), dnskey: DNSKEYData(flags: ksk ? 257 : 256, algorithm: 15,
                                                                          publicKey: Array(key.publicKey.rawRepresentation)))
    }

    /// A key of `algorithm` with random bytes; with `keyTag`, bytes chosen so that it has that tag.
    package static func fake(algorithm: UInt8, keyTag: UInt16? = nil, length: Int = 32) -> TestSigningKey {
        var bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
        if let keyTag {
            // The key tag sums 16-bit words (RFC 4034 App. B); with an even-length key the last
            // two octets form one word, so search that word alone.
            bytes[length - 2] = 0
            bytes[length - 1] = 0
            let rdata = DNSKEYData(flags: 256, algorithm: algorithm, publicKey: bytes).rdata
            var sum: UInt32 = 0
            for (index, byte) in rdata.enumerated() { sum &+= index & 1 == 0 ? UInt32(byte) << 8 : UInt32(byte) }
            for word in UInt32(0)...0xFFFF {
                let total = sum &+ word
                if UInt16(truncatingIfNeeded: total &+ ((total >> 16) & 0xFFFF)) == keyTag {
                    bytes[length - 2] = UInt8(word >> 8)
                    bytes[length - 1] = UInt8(word & 0xFF)
                    break
                }
            }
            precondition(length % 2 == 0 && DNSKEYData(flags: 256, algorithm: algorithm, publicKey: bytes).keyTag == keyTag)
        }
        return TestSigningKey(material: .fake, dnskey: DNSKEYData(flags: 256, algorithm: algorithm, publicKey: bytes))
    }

    package func sign(_ data: [UInt8]) -> [UInt8] {
        switch self.material {
        case .p256(let key): return Array((try! key.signature(for: SHA256.hash(data: data))).rawRepresentation)
        case .ed25519(let key): return Array(try! key.signature(for: data))
        case .fake: return (0..<64).map { _ in UInt8.random(in: 0...255) }
        }
    }

    package func ds(owner: String, digestType: UInt8 = 2) -> DSData {
        DSData(keyTag: self.dnskey.keyTag, algorithm: self.dnskey.algorithm, digestType: digestType,
               digest: DNSSECCrypto.dsDigest(owner: owner, key: self.dnskey, digestType: digestType)!)
    }
}

/// One zone of a test hierarchy: its records, keys and denial method. Signatures are made
/// when the zone is built, with the validity window given.
package struct TestZone: Sendable {
    package enum Denial: Sendable {
        case nsec
        case nsec3(iterations: UInt16, salt: [UInt8], optOut: Bool)
    }

    package var name: String
    /// Unsigned when empty.
    package var signingKeys: [TestSigningKey]
    /// Published in the DNSKEY set without signing anything else (the KSK signs DNSKEY only).
    package var keySigningKeys: [TestSigningKey]
    /// Keys published but never signing.
    package var extraKeys: [DNSKEYData] = []
    /// When set, the DNSKEY set published instead of the zone's keys (a signer left out).
    package var publishedKeys: [DNSKEYData]? = nil
    /// When set, the DS records the parent publishes instead of the KSKs' (a DS matching no key).
    package var dsOverride: [DSData]? = nil
    package var records: [DNSResourceRecord]
    package var denial: Denial = .nsec
    package var inception: UInt32
    package var expiration: UInt32

    package init(name: String, signed: Bool = true, algorithm: UInt8 = 13, records: [DNSResourceRecord],
                 denial: Denial = .nsec, inception: UInt32, expiration: UInt32) {
        self.name = name
        if signed {
            let zsk: TestSigningKey = algorithm == 15 ? .ed25519() : .p256()
            let ksk: TestSigningKey = algorithm == 15 ? .ed25519(ksk: true) : .p256(ksk: true)
            self.signingKeys = [zsk]
            self.keySigningKeys = [ksk]
        } else {
            self.signingKeys = []
            self.keySigningKeys = []
        }
        self.records = records + [DNSResourceRecord(name: name, ttl: 3600, data: .soa(SOAData(
            mname: "ns.\(name)", rname: "hostmaster.\(name)", serial: 1, refresh: 3600, retry: 600,
            expire: 86400, minimum: 300)))]
        self.denial = denial
        self.inception = inception
        self.expiration = expiration
    }

    package var isSigned: Bool { !self.signingKeys.isEmpty }

    package var dnskeyRecords: [DNSResourceRecord] {
        guard self.isSigned else { return [] }
        return (self.publishedKeys ?? (self.keySigningKeys + self.signingKeys).map(\.dnskey)).map {
            DNSResourceRecord(name: self.name, ttl: 3600, data: .unknown(type: .dnskey, data: $0.rdata))
        } + self.extraKeys.map { DNSResourceRecord(name: self.name, ttl: 3600, data: .unknown(type: .dnskey, data: $0.rdata)) }
    }

    /// The DS records a parent publishes for this zone (from its KSKs).
    package var dsRecords: [DNSResourceRecord] {
        if let override = self.dsOverride {
            return override.map { DNSResourceRecord(name: self.name, ttl: 3600, data: .unknown(type: .ds, data: $0.rdata)) }
        }
        return self.keySigningKeys.map {
            DNSResourceRecord(name: self.name, ttl: 3600, data: .unknown(type: .ds, data: $0.ds(owner: self.name).rdata))
        }
    }

    /// RRSIG records over `records` (one RRset), by `keys` (default: the zone's signing keys,
    /// or its KSKs for DNSKEY). `owner` is the name the records answer (a wildcard's expansion).
    package func signatures(_ records: [DNSResourceRecord], owner: String? = nil, keys: [TestSigningKey]? = nil,
                            labels: Int? = nil) -> [DNSResourceRecord] {
        guard let first = records.first, self.isSigned else { return [] }
        let signers = keys ?? (first.type == .dnskey ? self.keySigningKeys : self.signingKeys)
        let ownerName = owner ?? first.name
        let labelCount = labels ?? (try! DNSCanonicalForm.labelCount(first.name))
        return signers.map { key in
            var rrsig = RRSIGData(typeCovered: first.type, algorithm: key.dnskey.algorithm, labels: UInt8(labelCount),
                                  originalTTL: first.ttl, expiration: self.expiration, inception: self.inception,
                                  keyTag: key.dnskey.keyTag, signerName: self.name, signature: [])
            let data = try! DNSCanonicalForm.signedData(rrsig: rrsig, owner: ownerName, type: first.type,
                                                        recordClass: DNSMessage.classIN, records: records.map(\.data))
            rrsig.signature = key.sign(data)
            return DNSResourceRecord(name: ownerName, ttl: first.ttl, data: .unknown(type: .rrsig, data: try! rrsig.rdata()))
        }
    }
}

/// Answers like a recursive resolver in front of a signed hierarchy (a root or any zones):
/// data from the deepest zone holding the name, DS from the parent side, CNAMEs followed
/// across zones, wildcards expanded, NXDOMAIN and NODATA with NSEC or NSEC3 proofs, all
/// signed as each zone says. `tamper` may rewrite any reply (strip an RRSIG, drop a proof).
package struct SignedHierarchy: Sendable {
    package var zones: [TestZone]
    package var tamper: (@Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage?)?

    package init(zones: [TestZone], tamper: (@Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage?)? = nil) {
        self.zones = zones
        self.tamper = tamper
    }

    package var script: DNSServerScript {
        let hierarchy = self
        return { query, _ in
            guard let question = query.questions.first else { return [] }
            var reply = hierarchy.answer(question, to: query)
            if let tamper = hierarchy.tamper {
                guard let changed = tamper(question, reply) else { return [] }
                reply = changed
            }
            return [.send(reply)]
        }
    }

    private static func isAtOrBelow(_ name: String, _ zone: String) -> Bool {
        zone.isEmpty || name == zone || name.hasSuffix("." + zone)
    }

    /// The deepest zone holding `name`; for DS, the deepest zone strictly above it.
    private func zone(for name: String, type: DNSRecordType) -> TestZone? {
        self.zones.filter { Self.isAtOrBelow(name, $0.name) && !(type == .ds && $0.name == name && !name.isEmpty) }
            .max { $0.name.count < $1.name.count }
    }

    /// Every record of the zone, with its DNSKEYs and the DS of its signed children, and the
    /// names that exist in it (empty non-terminals included), below no delegation.
    private func contents(of zone: TestZone) -> (records: [DNSResourceRecord], names: Set<String>) {
        let children = self.zones.filter { $0.name != zone.name && Self.isAtOrBelow($0.name, zone.name) }
        var records = zone.records + zone.dnskeyRecords
        // The DS of each signed child directly below (no other served zone in between).
        for child in children where (child.isSigned || child.dsOverride != nil)
            && !children.contains(where: { $0.name != child.name && Self.isAtOrBelow(child.name, $0.name) }) {
            records += child.dsRecords
        }
        for child in children where !records.contains(where: { $0.name == child.name && $0.type == .ns }) {
            records.append(DNSResourceRecord(name: child.name, ttl: 3600, data: .ns("ns.\(child.name)")))
        }
        var names: Set<String> = []
        for record in records {
            var name = record.name
            while Self.isAtOrBelow(name, zone.name) {
                names.insert(name)
                if name == zone.name { break }
                name = DNSName.parentZone(of: name)
            }
        }
        return (records, names)
    }

    package func answer(_ question: DNSWireQuestion, to query: DNSMessage) -> DNSMessage {
        var answers: [DNSResourceRecord] = []
        var name = question.name
        var seen: Set<String> = []
        while seen.insert(name).inserted {
            guard let zone = self.zone(for: name, type: question.type) else {
                return ScriptedDNSServer.reply(to: query, rcode: .refused)
            }
            let (records, names) = self.contents(of: zone)
            let here = records.filter { $0.name == name }
            let matching = here.filter { $0.type == question.type }
            if !matching.isEmpty {
                answers += matching + zone.signatures(matching)
                return ScriptedDNSServer.reply(to: query, answers: answers)
            }
            if let alias = here.first(where: { $0.type == .cname }), case .cname(let target) = alias.data {
                answers += [alias] + zone.signatures([alias])
                name = target
                continue
            }
            if names.contains(name) {
                // NODATA (or a referral-free delegation point seen from the parent).
                return ScriptedDNSServer.reply(to: query, answers: answers,
                                               authority: self.soa(zone, records) + self.nodataProof(name, zone, records, names))
            }
            // Wildcard at the closest encloser?
            let encloser = self.closestEncloser(name, names: names, zone: zone)
            let wildcardName = encloser.isEmpty ? "*" : "*." + encloser
            let wildcard = records.filter { $0.name == wildcardName && $0.type == question.type }
            if !wildcard.isEmpty {
                let expanded = wildcard.map { DNSResourceRecord(name: name, ttl: $0.ttl, data: $0.data) }
                let sigs = zone.signatures(wildcard, owner: name)
                return ScriptedDNSServer.reply(to: query, answers: answers + expanded + sigs,
                                               authority: self.wildcardProof(name, encloser: encloser, zone, records, names))
            }
            return ScriptedDNSServer.reply(to: query, rcode: .nxDomain, answers: answers,
                                           authority: self.soa(zone, records) + self.nxdomainProof(name, encloser: encloser, zone, records, names))
        }
        return ScriptedDNSServer.reply(to: query, rcode: .servFail)
    }

    private func closestEncloser(_ name: String, names: Set<String>, zone: TestZone) -> String {
        var current = name
        while !names.contains(current) && current != zone.name { current = DNSName.parentZone(of: current) }
        return current
    }

    private func soa(_ zone: TestZone, _ records: [DNSResourceRecord]) -> [DNSResourceRecord] {
        let soa = records.filter { $0.name == zone.name && $0.type == .soa }
        return soa + zone.signatures(soa)
    }

    // MARK: - NSEC

    private func sortedNames(_ names: Set<String>) -> [String] { names.sorted(by: DNSCanonicalForm.precedes) }

    private func types(at name: String, _ zone: TestZone, _ records: [DNSResourceRecord]) -> DNSSECTypeBitmap {
        var types = Set(records.filter { $0.name == name }.map(\.type.rawValue))
        let isDelegation = name != zone.name && types.contains(DNSRecordType.ns.rawValue)
        if zone.isSigned && (!types.isEmpty || name == zone.name) {
            if !isDelegation || types.contains(DNSRecordType.ds.rawValue) { types.insert(DNSRecordType.rrsig.rawValue) }
            if case .nsec = zone.denial { types.insert(DNSRecordType.nsec.rawValue) }
        }
        if name == zone.name, case .nsec3 = zone.denial { types.insert(DNSRecordType.nsec3param.rawValue) }
        return DNSSECTypeBitmap(types)
    }

    private func nsecRecord(_ owner: String, _ zone: TestZone, _ records: [DNSResourceRecord], _ names: Set<String>) -> [DNSResourceRecord] {
        let ordered = self.sortedNames(names)
        guard let index = ordered.firstIndex(of: owner) else { return [] }
        let next = ordered[(index + 1) % ordered.count]
        let data = NSECData(nextName: next, types: self.types(at: owner, zone, records))
        let record = DNSResourceRecord(name: owner, ttl: 300, data: .unknown(type: .nsec, data: try! data.rdata()))
        return [record] + zone.signatures([record])
    }

    /// The NSEC whose span covers `name` (the last owner before it in canonical order).
    private func coveringNSEC(_ name: String, _ zone: TestZone, _ records: [DNSResourceRecord], _ names: Set<String>) -> [DNSResourceRecord] {
        let ordered = self.sortedNames(names)
        let owner = ordered.last { DNSCanonicalForm.precedes($0, name) } ?? ordered.last!
        return self.nsecRecord(owner, zone, records, names)
    }

    // MARK: - NSEC3

    private func hashed(_ zone: TestZone, _ names: Set<String>) -> [(hash: [UInt8], name: String)] {
        guard case .nsec3(let iterations, let salt, let optOut) = zone.denial else { return [] }
        // Opt-out: unsigned delegations get no NSEC3 of their own (RFC 5155 §6).
        let records = self.contents(of: zone).records
        let hashedNames = names.filter { name in
            guard optOut, name != zone.name else { return true }
            let here = records.filter { $0.name == name }.map(\.type)
            return !(here.contains(.ns) && !here.contains(.ds))
        }
        return hashedNames.map { (DNSSECCrypto.nsec3Hash(name: $0, salt: salt, iterations: Int(iterations))!, $0) }
            .sorted { $0.hash.lexicographicallyPrecedes($1.hash) }
    }

    private func nsec3Record(index: Int, _ chain: [(hash: [UInt8], name: String)], _ zone: TestZone,
                             _ records: [DNSResourceRecord]) -> [DNSResourceRecord] {
        guard case .nsec3(let iterations, let salt, let optOut) = zone.denial else { return [] }
        let entry = chain[index]
        let next = chain[(index + 1) % chain.count].hash
        let data = NSEC3Data(flags: optOut ? 1 : 0, iterations: iterations, salt: salt, nextHashedOwner: next,
                             types: self.types(at: entry.name, zone, records))
        let owner = Base32Hex.encode(entry.hash) + (zone.name.isEmpty ? "" : "." + zone.name)
        let record = DNSResourceRecord(name: owner, ttl: 300, data: .unknown(type: .nsec3, data: data.rdata))
        return [record] + zone.signatures([record])
    }

    private func nsec3Matching(_ name: String, _ zone: TestZone, _ records: [DNSResourceRecord], _ names: Set<String>) -> [DNSResourceRecord] {
        let chain = self.hashed(zone, names)
        guard let index = chain.firstIndex(where: { $0.name == name }) else { return [] }
        return self.nsec3Record(index: index, chain, zone, records)
    }

    private func nsec3Covering(_ name: String, _ zone: TestZone, _ records: [DNSResourceRecord], _ names: Set<String>) -> [DNSResourceRecord] {
        guard case .nsec3(let iterations, let salt, _) = zone.denial else { return [] }
        let chain = self.hashed(zone, names)
        let hash = DNSSECCrypto.nsec3Hash(name: name, salt: salt, iterations: Int(iterations))!
        let index = chain.lastIndex { $0.hash.lexicographicallyPrecedes(hash) } ?? chain.count - 1
        return self.nsec3Record(index: index, chain, zone, records)
    }

    /// Drops repeated records, and a second RRSIG over the same RRset (ECDSA signatures are
    /// randomised, so the same record signed twice gives two different RRSIGs).
    private func unique(_ records: [DNSResourceRecord]) -> [DNSResourceRecord] {
        var result: [DNSResourceRecord] = []
        var signed: Set<String> = []
        for record in records where !result.contains(record) {
            if record.type == .rrsig, let raw = record.data.rawData, raw.count >= 2 {
                guard signed.insert("\(record.name) \(raw[0]) \(raw[1])").inserted else { continue }
            }
            result.append(record)
        }
        return result
    }

    private func nodataProof(_ name: String, _ zone: TestZone, _ records: [DNSResourceRecord], _ names: Set<String>) -> [DNSResourceRecord] {
        guard zone.isSigned else { return [] }
        if case .nsec = zone.denial { return self.nsecRecord(name, zone, records, names) }
        let matching = self.nsec3Matching(name, zone, records, names)
        if !matching.isEmpty { return matching }
        // An opted-out delegation: the closest encloser and the opt-out span over it.
        let encloser = DNSName.parentZone(of: name)
        return self.unique(self.nsec3Matching(encloser, zone, records, names) + self.nsec3Covering(name, zone, records, names))
    }

    private func nxdomainProof(_ name: String, encloser: String, _ zone: TestZone, _ records: [DNSResourceRecord],
                               _ names: Set<String>) -> [DNSResourceRecord] {
        guard zone.isSigned else { return [] }
        let wildcard = encloser.isEmpty ? "*" : "*." + encloser
        if case .nsec = zone.denial {
            return self.unique(self.coveringNSEC(name, zone, records, names) + self.coveringNSEC(wildcard, zone, records, names))
        }
        var nextCloser = name
        while DNSName.parentZone(of: nextCloser) != encloser { nextCloser = DNSName.parentZone(of: nextCloser) }
        return self.unique(self.nsec3Matching(encloser, zone, records, names)
            + self.nsec3Covering(nextCloser, zone, records, names)
            + self.nsec3Covering(wildcard, zone, records, names))
    }

    private func wildcardProof(_ name: String, encloser: String, _ zone: TestZone, _ records: [DNSResourceRecord],
                               _ names: Set<String>) -> [DNSResourceRecord] {
        guard zone.isSigned else { return [] }
        if case .nsec = zone.denial { return self.coveringNSEC(name, zone, records, names) }
        var nextCloser = name
        while DNSName.parentZone(of: nextCloser) != encloser { nextCloser = DNSName.parentZone(of: nextCloser) }
        return self.nsec3Covering(nextCloser, zone, records, names)
    }
}
