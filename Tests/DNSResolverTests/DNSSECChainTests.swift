import DNS
import DNSTestSupport
import NIOCore
import Testing
@testable import DNSResolver

/// A signed hierarchy served by the in-process fake server: a private root `.`, `test.`,
/// and children signed in the test with P-256 and Ed25519, validated end to end through the
/// resolver from a trust anchor for the private root.
struct DNSSECFixture {
    /// 2027-01-15T08:00:00Z: the validator's clock in these tests.
    static let now: Int64 = 1_800_000_000
    static let validFrom = UInt32(now - 86400)
    static let validUntil = UInt32(now + 30 * 86400)

    var root: TestZone
    var zones: [TestZone]

    static func zone(_ name: String, signed: Bool = true, algorithm: UInt8 = 13, denial: TestZone.Denial = .nsec,
                     records: [DNSResourceRecord] = [], inception: UInt32 = validFrom,
                     expiration: UInt32 = validUntil) -> TestZone {
        TestZone(name: name, signed: signed, algorithm: algorithm, records: records, denial: denial,
                 inception: inception, expiration: expiration)
    }

    init(extra: [TestZone] = []) {
        self.root = Self.zone("", records: [])
        self.zones = [
            Self.zone("test"),
            Self.zone("example.test", algorithm: 15, records: [
                a("www.example.test", "192.0.2.1"),
                DNSResourceRecord(name: "example.test", ttl: 3600, data: .mx(preference: 10, exchange: "mx.example.test")),
                a("mx.example.test", "192.0.2.2"),
                a("*.wild.example.test", "192.0.2.3"),
                cname("alias.example.test", "www.nsec3.test"),
            ]),
            Self.zone("nsec3.test", denial: .nsec3(iterations: 5, salt: [0xAB, 0xCD], optOut: false), records: [
                a("www.nsec3.test", "192.0.2.4"),
                a("deep.sub.nsec3.test", "192.0.2.5"),
            ]),
            Self.zone("unsigned.test", signed: false, records: [a("www.unsigned.test", "192.0.2.6")]),
        ] + extra
    }

    var anchors: DNSTrustAnchors {
        DNSTrustAnchors(records: self.root.dsRecords.map(\.record))!
    }

    func hierarchy(tamper: (@Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage?)? = nil) -> SignedHierarchy {
        SignedHierarchy(zones: [self.root] + self.zones, tamper: tamper)
    }

    func resolver(_ server: ScriptedDNSServer, timeout: TimeAmount = .seconds(1), limits: DNSSECLimits = DNSSECLimits()) -> DNSNetworkResolver {
        var resolverOptions = options(timeout: timeout, validate: true)
        resolverOptions.trustAnchors = self.anchors
        resolverOptions.dnssecLimits = limits
        return DNSNetworkResolver(servers: [server.address], options: resolverOptions, wallClock: { Self.now })
    }

    /// Runs `body` against a fake server answering for this hierarchy.
    func run<T>(tamper: (@Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage?)? = nil,
                _ body: (DNSNetworkResolver, ScriptedDNSServer) async throws -> T) async throws -> T {
        try await withServers([self.hierarchy(tamper: tamper).script]) { servers in
            try await body(self.resolver(servers[0]), servers[0])
        }
    }
}

func security(_ result: DNSQueryResult) -> DNSSecurity? {
    switch result {
    case .success(let answer): return answer.security
    case .failure(let error): return error.security
    }
}

@Suite("DNSSEC chain of trust through the resolver")
struct DNSSECChainTests {
    @Test("a signed answer is secure; queries carry DO and CD; the status is cached with the data")
    func secureAnswer() async throws {
        try await DNSSECFixture().run { resolver, server in
            let question = DNSQuestion(name: "www.example.test", type: .a)
            let answer = try await resolver.resolve(question).get()
            #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.1")!)])
            #expect(answer.security == .secure)
            #expect(server.queries.allSatisfy { $0.dnssecOK && $0.checkingDisabled })
            let asked = Set(server.queries.map { "\($0.question.name)/\($0.question.type)" })
            #expect(asked.isSuperset(of: ["/DNSKEY", "test/DS", "test/DNSKEY", "example.test/DS", "example.test/DNSKEY"]))
            let count = server.queries.count
            let again = try await resolver.resolve(question).get()
            #expect(again.security == .secure)
            #expect(server.queries.count == count, "answered from the cache")
            // Another name in the same zone needs no more DS or DNSKEY.
            let mx = try await resolver.resolve(DNSQuestion(name: "example.test", type: .mx)).get()
            #expect(mx.security == .secure)
            #expect(server.queries.count == count + 1)
        }
    }

    @Test("lookups arriving together for a new zone share its DS and DNSKEY fetches")
    func sharedChainFetches() async throws {
        try await DNSSECFixture().run { resolver, server in
            let results = await withTaskGroup(of: DNSQueryResult.self) { group in
                for index in 0..<20 {
                    group.addTask { await resolver.resolve(DNSQuestion(name: "n\(index).wild.example.test", type: .a)) }
                }
                return await group.reduce(into: [DNSQueryResult]()) { $0.append($1) }
            }
            #expect(results.allSatisfy { security($0) == .secure }, "\(results)")
            let asked = server.queries.map { "\($0.question.name)/\($0.question.type)" }
            for step in ["example.test/DS", "example.test/DNSKEY", "test/DS", "/DNSKEY"] {
                #expect(asked.filter { $0 == step }.count == 1, "\(step) asked \(asked.filter { $0 == step }.count) times")
            }
        }
    }

    @Test("secure NXDOMAIN and NODATA with NSEC and with NSEC3")
    func secureDenials() async throws {
        try await DNSSECFixture().run { resolver, _ in
            for (name, type, expected) in [
                ("nothing.example.test", DNSRecordType.a, DNSOutcome.nxdomain),
                ("www.example.test", .mx, .nodata),
                ("nothing.nsec3.test", .a, .nxdomain),
                ("a.b.nsec3.test", .a, .nxdomain),
                ("www.nsec3.test", .txt, .nodata),
                ("sub.nsec3.test", .a, .nodata),  // an empty non-terminal
            ] {
                let answer = try await resolver.resolve(DNSQuestion(name: name, type: type)).get()
                #expect(answer.outcome == expected, "\(name)/\(type)")
                #expect(answer.security == .secure, "\(name)/\(type): \(answer.security)")
            }
        }
    }

    @Test("an expired RRSIG is bogus with the date in the reason; so is a signature not yet valid")
    func signatureDates() async throws {
        let expired = DNSSECFixture.zone("expired.test", records: [a("www.expired.test", "192.0.2.7")],
                                         inception: 1_700_000_000, expiration: 1_795_132_800)
        let future = DNSSECFixture.zone("future.test", records: [a("www.future.test", "192.0.2.8")],
                                        inception: 1_801_526_400, expiration: 1_900_000_000)
        try await DNSSECFixture(extra: [expired, future]).run { resolver, _ in
            let old = await resolver.resolve(DNSQuestion(name: "www.expired.test", type: .a))
            #expect(errorKind(old) == .bogus)
            #expect(security(old)?.status == .bogus)
            #expect(security(old)?.reason?.contains("RRSIG expired 2026-11-20T00:00:00Z for expired.test/") == true, "\(old)")
            let early = await resolver.resolve(DNSQuestion(name: "www.future.test", type: .a))
            #expect(errorKind(early) == .bogus)
            #expect(security(early)?.reason?.contains("RRSIG not valid before 2027-02-02T00:00:00Z for") == true, "\(early)")
            #expect(resolver.immediateResult(for: DNSQuestion(name: "www.expired.test", type: .a)) == nil, "bogus is not cached as an answer")
        }
    }

    @Test("a DS matching no key, and a signature by a key not in the DNSKEY set, are bogus")
    func brokenKeys() async throws {
        var mismatch = DNSSECFixture.zone("mismatch.test", records: [a("www.mismatch.test", "192.0.2.9")])
        mismatch.dsOverride = [TestSigningKey.p256(ksk: true).ds(owner: "mismatch.test")]
        var stranger = DNSSECFixture.zone("stranger.test", records: [a("www.stranger.test", "192.0.2.10")])
        stranger.publishedKeys = stranger.keySigningKeys.map(\.dnskey) + [TestSigningKey.p256().dnskey]
        try await DNSSECFixture(extra: [mismatch, stranger]).run { resolver, _ in
            let first = await resolver.resolve(DNSQuestion(name: "www.mismatch.test", type: .a))
            #expect(errorKind(first) == .bogus)
            #expect(security(first)?.reason == "no DS matches a DNSKEY of mismatch.test")
            let second = await resolver.resolve(DNSQuestion(name: "www.stranger.test", type: .a))
            #expect(errorKind(second) == .bogus)
            #expect(security(second)?.reason?.contains("no trusted DNSKEY of stranger.test has that tag") == true, "\(second)")
        }
    }

    @Test("a signature by a revoked key, or by a key without the zone-key flag, is bogus")
    func keyFlags() async throws {
        var revoked = DNSSECFixture.zone("revoked.test", records: [a("www.revoked.test", "192.0.2.20")])
        var notZone = DNSSECFixture.zone("notzone.test", records: [a("www.notzone.test", "192.0.2.21")])
        for (index, flags) in [(0, UInt16(256 | 0x80)), (1, UInt16(0))] {
            var zone = index == 0 ? revoked : notZone
            var key = TestSigningKey.p256()
            key.dnskey = DNSKEYData(flags: flags, algorithm: 13, publicKey: key.dnskey.publicKey)
            zone.signingKeys = [key]
            if index == 0 { revoked = zone } else { notZone = zone }
        }
        try await DNSSECFixture(extra: [revoked, notZone]).run { resolver, _ in
            let first = await resolver.resolve(DNSQuestion(name: "www.revoked.test", type: .a))
            #expect(errorKind(first) == .bogus)
            #expect(security(first)?.reason?.hasSuffix("is revoked") == true, "\(first)")
            let second = await resolver.resolve(DNSQuestion(name: "www.notzone.test", type: .a))
            #expect(errorKind(second) == .bogus)
            #expect(security(second)?.reason?.hasSuffix("is not a zone key") == true, "\(second)")
        }
    }

    @Test("TTLs are capped by the RRSIG's original TTL and by the signature's remaining life")
    func ttlCaps() async throws {
        let shortLived = DNSSECFixture.zone("short.test", records: [a("www.short.test", "192.0.2.22", ttl: 3600)],
                                            expiration: UInt32(DNSSECFixture.now + 100))
        let raiseTTL: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            guard question.name == "www.example.test" else { return message }
            var message = message
            // The record claims a day; its signature says 300 s (the original TTL).
            for index in message.answers.indices where message.answers[index].type == .a { message.answers[index].ttl = 86400 }
            return message
        }
        try await DNSSECFixture(extra: [shortLived]).run(tamper: raiseTTL) { resolver, _ in
            let short = try await resolver.resolve(DNSQuestion(name: "www.short.test", type: .a)).get()
            #expect(short.security == .secure)
            #expect(short.records.map(\.ttl) == [100])
            let raised = try await resolver.resolve(DNSQuestion(name: "www.example.test", type: .a)).get()
            #expect(raised.security == .secure)
            #expect(raised.records.map(\.ttl) == [300])
        }
    }

    @Test("a missing RRSIG and a missing denial proof are bogus")
    func strippedRecords() async throws {
        let stripSignatures: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            var message = message
            if question.name == "www.example.test" { message.answers.removeAll { $0.type == .rrsig } }
            if question.name == "nothing.example.test" || question.name == "nothing.nsec3.test" {
                message.authority.removeAll { $0.type == .nsec || $0.type == .nsec3 }
            }
            return message
        }
        try await DNSSECFixture().run(tamper: stripSignatures) { resolver, _ in
            let unsigned = await resolver.resolve(DNSQuestion(name: "www.example.test", type: .a))
            #expect(errorKind(unsigned) == .bogus)
            #expect(security(unsigned)?.reason == "missing RRSIG for www.example.test/A in signed zone example.test")
            let noProof = await resolver.resolve(DNSQuestion(name: "nothing.example.test", type: .a))
            #expect(errorKind(noProof) == .bogus)
            #expect(security(noProof)?.reason == "missing NSEC proof for nothing.example.test/A")
            let noProof3 = await resolver.resolve(DNSQuestion(name: "nothing.nsec3.test", type: .a))
            #expect(errorKind(noProof3) == .bogus)
        }
    }

    @Test("DS of an unsupported algorithm only: insecure, not bogus; an unsigned delegation is insecure")
    func insecureZones() async throws {
        var exotic = DNSSECFixture.zone("exotic.test", records: [a("www.exotic.test", "192.0.2.11")])
        exotic.dsOverride = [DSData(keyTag: 4242, algorithm: 16, digestType: 2, digest: Array(repeating: 7, count: 32))]
        try await DNSSECFixture(extra: [exotic]).run { resolver, _ in
            let answer = try await resolver.resolve(DNSQuestion(name: "www.exotic.test", type: .a)).get()
            #expect(answer.security.status == .insecure)
            #expect(answer.security.reason == "the DS records of exotic.test use only unsupported algorithms or digests")
            let unsigned = try await resolver.resolve(DNSQuestion(name: "www.unsigned.test", type: .a)).get()
            #expect(unsigned.records.map(\.data) == [.a(IPAddress("192.0.2.6")!)])
            #expect(unsigned.security.status == .insecure)
            #expect(unsigned.security.reason == "unsigned delegation at unsigned.test")
            let missing = try await resolver.resolve(DNSQuestion(name: "nothing.unsigned.test", type: .a)).get()
            #expect(missing.outcome == .nxdomain)
            #expect(missing.security.status == .insecure)
        }
    }

    @Test("a wildcard answer is secure with its no-closer-match proof and bogus without it")
    func wildcard() async throws {
        try await DNSSECFixture().run { resolver, _ in
            let answer = try await resolver.resolve(DNSQuestion(name: "host.wild.example.test", type: .a)).get()
            #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.3")!)])
            #expect(answer.security == .secure)
            // Another expansion of the same wildcard carries the same signature: verified once.
            let (other, trace) = await resolver.resolveTracing(DNSQuestion(name: "other.wild.example.test", type: .a))
            #expect(try other.get().security == .secure)
            #expect(trace.contains { $0.hasPrefix("  RRSIG other.wild.example.test/A by example.test") && $0.hasSuffix("verified (same signature verified before)") },
                    "\(trace)")
        }
        let dropProof: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            var message = message
            if question.name == "host.wild.example.test" { message.authority.removeAll() }
            return message
        }
        try await DNSSECFixture().run(tamper: dropProof) { resolver, _ in
            let result = await resolver.resolve(DNSQuestion(name: "host.wild.example.test", type: .a))
            #expect(errorKind(result) == .bogus)
            #expect(security(result)?.reason == "missing NSEC or NSEC3 proof that host.wild.example.test has no closer match than the wildcard")
        }
    }

    @Test("a CNAME chain across zones: each link validated")
    func cnameChain() async throws {
        try await DNSSECFixture().run { resolver, _ in
            let answer = try await resolver.resolve(DNSQuestion(name: "alias.example.test", type: .a)).get()
            #expect(answer.chain.map(\.name) == ["alias.example.test"])
            #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.4")!)])
            #expect(answer.security == .secure)
        }
        // The link in example.test unsigned: the whole answer is bogus.
        let stripAlias: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            var message = message
            message.answers.removeAll { $0.type == .rrsig && $0.name == "alias.example.test" }
            return message
        }
        try await DNSSECFixture().run(tamper: stripAlias) { resolver, _ in
            let result = await resolver.resolve(DNSQuestion(name: "alias.example.test", type: .a))
            #expect(security(result)?.reason == "missing RRSIG for alias.example.test/CNAME in signed zone example.test")
        }
    }

    @Test("a DS fetch that times out leaves the answer indeterminate, a failure of the fetch's kind")
    func dsTimeout() async throws {
        let dropDS: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            question.type == .ds && question.name == "example.test" ? nil : message
        }
        let fixture = DNSSECFixture()
        try await withServers([fixture.hierarchy(tamper: dropDS).script]) { servers in
            let resolver = fixture.resolver(servers[0], timeout: .milliseconds(200))
            let result = await resolver.resolve(DNSQuestion(name: "www.example.test", type: .a))
            #expect(errorKind(result) == .timeout)
            #expect(security(result)?.status == .indeterminate)
            #expect(security(result)?.reason?.hasPrefix("DNSSEC validation could not complete: DNS timeout for example.test/DS") == true,
                    "\(result)")
        }
    }

    @Test("NSEC3 with 500 iterations is insecure (RFC 9276), not bogus")
    func nsec3Iterations() async throws {
        let heavy = DNSSECFixture.zone("heavy.test", denial: .nsec3(iterations: 500, salt: [1], optOut: false),
                                       records: [a("www.heavy.test", "192.0.2.12")])
        try await DNSSECFixture(extra: [heavy]).run { resolver, _ in
            let positive = try await resolver.resolve(DNSQuestion(name: "www.heavy.test", type: .a)).get()
            #expect(positive.security == .secure)
            let answer = try await resolver.resolve(DNSQuestion(name: "nothing.heavy.test", type: .a)).get()
            #expect(answer.outcome == .nxdomain)
            #expect(answer.security.status == .insecure)
            #expect(answer.security.reason == "NSEC3 with 500 iterations, over the RFC 9276 limit of 150")
        }
    }

    @Test("an opt-out span makes an unsigned delegation insecure")
    func optOut() async throws {
        let optedOut = DNSSECFixture.zone("optout.test", denial: .nsec3(iterations: 0, salt: [], optOut: true),
                                          records: [a("www.optout.test", "192.0.2.13")])
        let child = DNSSECFixture.zone("child.optout.test", signed: false, records: [a("www.child.optout.test", "192.0.2.14")])
        try await DNSSECFixture(extra: [optedOut, child]).run { resolver, _ in
            let answer = try await resolver.resolve(DNSQuestion(name: "www.child.optout.test", type: .a)).get()
            #expect(answer.security.status == .insecure)
            #expect(answer.security.reason == "unsigned delegation at child.optout.test")
            let signed = try await resolver.resolve(DNSQuestion(name: "www.optout.test", type: .a)).get()
            #expect(signed.security == .secure)
        }
    }

    @Test("KeyTrap: 50 keys sharing a key tag and 50 signatures end bogus within the bounds, quickly")
    func keyTrap() async throws {
        var trap = DNSSECFixture.zone("trap.test", records: [a("www.trap.test", "192.0.2.15")])
        let tag = trap.signingKeys[0].dnskey.keyTag
        let colliding = (0..<50).map { _ in TestSigningKey.fake(algorithm: 13, keyTag: tag, length: 64) }
        trap.extraKeys = colliding.map(\.dnskey)
        let forged = trap
        let flood: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
            guard question.name == "www.trap.test" else { return message }
            var message = message
            let records = message.answers.filter { $0.type == .a }
            // 50 signatures by the colliding keys, none valid, and no good one.
            message.answers = records + (0..<50).flatMap { index in
                forged.signatures(records, keys: [colliding[index]])
            }.map { record in
                var raw = try! RRSIGData(rdata: record.data.rawData!)
                raw.keyTag = tag
                return DNSResourceRecord(name: record.name, ttl: record.ttl, data: .unknown(type: .rrsig, data: try! raw.rdata()))
            }
            return message
        }
        let fixture = DNSSECFixture(extra: [trap])
        try await withServers([fixture.hierarchy(tamper: flood).script]) { servers in
            let resolver = fixture.resolver(servers[0])
            let start = NIODeadline.now()
            let (result, trace) = await resolver.resolveTracing(DNSQuestion(name: "www.trap.test", type: .a))
            let elapsed = (NIODeadline.now() - start).nanoseconds / 1_000_000
            #expect(errorKind(result) == .bogus)
            #expect(elapsed < 1000, "took \(elapsed) ms")
            let limits = DNSSECLimits()
            let attempts = trace.filter { $0.contains("RRSIG www.trap.test/A") && !$0.contains("verified") }
            #expect(attempts.count <= limits.signaturesPerRRset * limits.keysPerKeyTag, "\(attempts.count) attempts")
            #expect(attempts.count > 0)
        }
    }
}

@Suite("DNSSEC against mangled signed data")
struct DNSSECMangledDataTests {
    /// One octet of one DNSSEC record (RRSIG, DNSKEY, DS, NSEC, NSEC3) somewhere in the
    /// replies changed, 300 times: the lookup never ends secure and never traps.
    @Test func oneChangedOctetIsNeverSecure() async throws {
        let fixture = DNSSECFixture()
        let dnssecTypes: Set<DNSRecordType> = [.rrsig, .dnskey, .ds, .nsec, .nsec3]
        let questions = [DNSQuestion(name: "www.example.test", type: .a), DNSQuestion(name: "nothing.nsec3.test", type: .a),
                         DNSQuestion(name: "www.example.test", type: .mx)]
        var outcomes: [DNSSecurityStatus: Int] = [:]
        for round in 0..<300 {
            let target = questions[round % questions.count]
            // Which query's reply is mangled: the answer itself, or a step of its chain.
            let steps = ["", "test", "example.test", "nsec3.test", target.name]
            let victim = steps[(round / 3) % steps.count]
            let seed = UInt64(round) &* 0x9E37_79B9
            let mangle: @Sendable (DNSWireQuestion, DNSMessage) -> DNSMessage? = { question, message in
                guard question.name == victim else { return message }
                var generator = SplitMix64(state: seed)
                var message = message
                var sections = [message.answers, message.authority]
                let candidates = sections.indices.flatMap { section in
                    sections[section].indices.filter { dnssecTypes.contains(sections[section][$0].type) }.map { (section, $0) }
                }
                guard !candidates.isEmpty else { return message }
                let (section, index) = candidates[Int(generator.next() % UInt64(candidates.count))]
                guard case .unknown(let type, var bytes) = sections[section][index].data, !bytes.isEmpty else { return message }
                // Never 0x20 alone: that turns a letter of a signer name into its other case,
                // which names the same signer (names compare without case).
                var flip = UInt8(1 + generator.next() % 255)
                if flip == 0x20 { flip = 0x21 }
                bytes[Int(generator.next() % UInt64(bytes.count))] ^= flip
                sections[section][index].data = .unknown(type: type, data: bytes)
                message.answers = sections[0]
                message.authority = sections[1]
                return message
            }
            let mangled = try await withServers([fixture.hierarchy(tamper: mangle).script]) { servers in
                await fixture.resolver(servers[0]).resolve(target)
            }
            let status = security(mangled)?.status ?? .indeterminate
            outcomes[status, default: 0] += 1
            if victim == target.name || victim == "" {
                #expect(status != .secure, "round \(round): \(target) with \(victim)'s reply mangled: \(mangled)")
            }
        }
        #expect((outcomes[.bogus] ?? 0) > 100, "\(outcomes)")
    }
}

@Suite("DNSSEC trust kept per name, bounded")
struct DNSSECTrustCacheTests {
    @Test("the trust of names no anchor covers is kept for the newest names only, up to the capacity")
    func bounded() async {
        // An anchor for another zone only: each name below is insecure at once, kept a day.
        let anchors = DNSTrustAnchors(records: [DNSRecord(
            name: "other.test", ttl: 3600, data: .unknown(type: .ds, data: [0, 1, 13, 2] + Array(repeating: 0, count: 32)))])!
        let clock = ManualClock()
        let chain = DNSSECChainOfTrust(anchors: anchors, fetch: { question in
            Issue.record("nothing to fetch for \(question.name)")
            return .failure(DNSError(kind: .network, name: question.name, type: question.type, detail: "unexpected"))
        }, clock: clock.now, wallClock: { DNSSECFixture.now }, capacity: 8)
        let budget = ValidationBudget(limits: DNSSECLimits())
        for index in 0..<100 {
            let trust = await chain.trust("sender\(index).example", budget: budget, trace: nil)
            guard case .insecure = trust else {
                Issue.record("\(trust)")
                return
            }
        }
        #expect(chain.cachedCount == 8)
        #expect(chain.cachedTrust("sender99.example", trace: nil) != nil)
        #expect(chain.cachedTrust("sender92.example", trace: nil) != nil)
        #expect(chain.cachedTrust("sender91.example", trace: nil) == nil)
        #expect(chain.cachedTrust("sender0.example", trace: nil) == nil)
        chain.removeAll()
        #expect(chain.cachedCount == 0)
        for index in 0..<8 { _ = await chain.trust("again\(index).example", budget: budget, trace: nil) }
        _ = await chain.trust("again0.example", budget: budget, trace: nil)  // cached: not stored again
        clock.advance(seconds: 86_401)
        #expect(chain.cachedTrust("again1.example", trace: nil) == nil, "expired after a day")
        // Stored again: nine places marked for eight, so the oldest (again0's) goes with its
        // entry; again1's first mark no longer matches its entry.
        _ = await chain.trust("again1.example", budget: budget, trace: nil)
        #expect(chain.cachedCount == 7)
        // The next store drops that stale mark, and again1, stored anew, stays.
        _ = await chain.trust("new.example", budget: budget, trace: nil)
        #expect(chain.cachedCount == 8)
        #expect(chain.cachedTrust("again1.example", trace: nil) != nil)
        #expect(chain.cachedTrust("new.example", trace: nil) != nil)
    }
}
