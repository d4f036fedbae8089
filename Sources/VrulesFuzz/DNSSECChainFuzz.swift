import DNS
import DNSResolver
import DNSTestSupport
import NIOConcurrencyHelpers

/// The `dnssec-chain` target: a signed hierarchy's replies (the answer and every DS and DNSKEY
/// reply the chain of trust fetches), changed as the input says, then validated as the
/// resolver validates a lookup. A server that lies cannot forge a signature: whatever it
/// changes, an answer judged secure says what the signed zone says.
///
/// The input: one byte choosing the question, then changes of four bytes each: which reply
/// (the answer, or one of the chain's), a 16-bit offset into its wire form, and a byte to XOR
/// there (0: the reply is cut at that offset instead). A reply that no longer decodes, or no
/// longer answers the query (ID, question), is dropped, as the transport drops it.
enum DNSSECChainFuzz {
    /// 2027-01-15T08:00:00Z, inside the signatures' validity.
    static let now: Int64 = 1_800_000_000

    /// A private root, `test.`, two signed children (NSEC and NSEC3) and an unsigned one, every
    /// key Ed25519 from a fixed seed, so that replies repeat byte for byte across runs.
    static let zones: [TestZone] = {
        func zone(_ name: String, seed: UInt8, signed: Bool = true, denial: TestZone.Denial = .nsec,
                  records: [DNSResourceRecord] = []) -> TestZone {
            var zone = TestZone(name: name, signed: signed, algorithm: 15, records: records, denial: denial,
                                inception: UInt32(now - 86400), expiration: UInt32(now + 30 * 86400))
            if signed {
                zone.signingKeys = [.ed25519(seed: seed)]
                zone.keySigningKeys = [.ed25519(seed: seed &+ 100, ksk: true)]
            }
            return zone
        }
        func a(_ name: String, _ address: String) -> DNSResourceRecord {
            DNSResourceRecord(name: name, ttl: 3600, data: .a(IPAddress(address)!))
        }
        return [
            zone("", seed: 1),
            zone("test", seed: 2),
            zone("example.test", seed: 3, records: [
                a("www.example.test", "192.0.2.1"),
                DNSResourceRecord(name: "example.test", ttl: 3600, data: .mx(preference: 10, exchange: "mx.example.test")),
                a("mx.example.test", "192.0.2.2"),
                a("*.wild.example.test", "192.0.2.3"),
                DNSResourceRecord(name: "alias.example.test", ttl: 3600, data: .cname("www.nsec3.test")),
            ]),
            zone("nsec3.test", seed: 4, denial: .nsec3(iterations: 5, salt: [0xAB, 0xCD], optOut: false), records: [
                a("www.nsec3.test", "192.0.2.4"),
            ]),
            zone("unsigned.test", seed: 5, signed: false, records: [a("www.unsigned.test", "192.0.2.6")]),
        ]
    }()

    static let hierarchy = SignedHierarchy(zones: zones)
    static let anchors = DNSTrustAnchors(records: zones[0].dsRecords.map(\.record))!

    /// Answers, wildcard, cross-zone CNAME, NXDOMAIN and NODATA under NSEC and NSEC3, insecure.
    static let questions: [DNSQuestion] = [
        DNSQuestion(name: "www.example.test", type: .a), DNSQuestion(name: "example.test", type: .mx),
        DNSQuestion(name: "nothing.example.test", type: .a), DNSQuestion(name: "www.example.test", type: .txt),
        DNSQuestion(name: "x.wild.example.test", type: .a), DNSQuestion(name: "alias.example.test", type: .a),
        DNSQuestion(name: "www.nsec3.test", type: .a), DNSQuestion(name: "nothing.nsec3.test", type: .a),
        DNSQuestion(name: "www.nsec3.test", type: .mx), DNSQuestion(name: "www.unsigned.test", type: .a),
    ]

    /// The replies a change can reach besides the answer (index 0): those the chain fetches.
    static let chainQuestions: [DNSWireQuestion] =
        ["", "test", "example.test", "nsec3.test"].map { DNSWireQuestion(name: $0, type: .dnskey) }
        + ["test", "example.test", "nsec3.test", "unsigned.test"].map { DNSWireQuestion(name: $0, type: .ds) }

    /// Every genuine reply, made once (signing is the slow part).
    private static let genuine = NIOLockedValueBox([DNSWireQuestion: [UInt8]]())

    private static let queryID: UInt16 = 0x5EC0

    private static func genuineReply(_ question: DNSWireQuestion) -> [UInt8] {
        if let bytes = Self.genuine.withLockedValue({ $0[question] }) { return bytes }
        let query = DNSMessage.query(id: Self.queryID, question: question, dnssecOK: true)
        let bytes = try! Self.hierarchy.answer(question, to: query).encoded()
        Self.genuine.withLockedValue { $0[question] = bytes }
        return bytes
    }

    /// The reply to `question` after the input's changes to reply `slot`, or nil when dropped.
    private static func reply(_ question: DNSWireQuestion, slot: Int, changes: [(slot: Int, offset: Int, xor: UInt8)])
        -> DNSMessage?
    {
        var bytes = Self.genuineReply(question)
        for change in changes where change.slot == slot && !bytes.isEmpty {
            let offset = change.offset % bytes.count
            if change.xor == 0 { bytes.removeSubrange(offset...) } else { bytes[offset] ^= change.xor }
        }
        guard let message = try? DNSMessage(decoding: bytes), isReply(message, to: Self.queryID, question: question) else {
            return nil
        }
        return message
    }

    static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let question = Self.questions[Int(first) % Self.questions.count]
        let wireQuestion = DNSWireQuestion(name: question.name, type: question.type)
        var changes: [(slot: Int, offset: Int, xor: UInt8)] = []
        var index = 1
        while index + 4 <= input.count && changes.count < 16 {
            changes.append((Int(input[index]) % (1 + Self.chainQuestions.count),
                            Int(input[index + 1]) << 8 | Int(input[index + 2]), input[index + 3]))
            index += 4
        }
        let changesMade = changes
        guard let answer = Self.reply(wireQuestion, slot: 0, changes: changesMade) else { return }
        let genuine = try! DNSMessage(decoding: Self.genuineReply(wireQuestion))
        let chain = DNSSECChainOfTrust(anchors: Self.anchors, fetch: { fetched in
            let wire = DNSWireQuestion(name: fetched.name, type: fetched.type)
            let slot = Self.chainQuestions.firstIndex(of: wire).map { $0 + 1 } ?? -1
            guard let message = Self.reply(wire, slot: slot, changes: changesMade) else {
                return .failure(DNSError(kind: .timeout, name: fetched.name, type: fetched.type, detail: "reply dropped"))
            }
            return .success(message)
        }, clock: { .now() }, wallClock: { Self.now })
        let validator = DNSSECValidator(chain: chain, limits: DNSSECLimits(), wallClock: { Self.now })
        let read = LookupReading(answer, question: question)
        // Twice: the second finds the zones' trust cached, the resolver's fast path.
        for pass in ["fetched", "cached"] {
            let verdict = FuzzTarget.wait { await validator.validate([read.step], trace: nil) }
            if changesMade.isEmpty {
                // Unchanged, the fixture itself must validate, or the target proves nothing.
                let expected: DNSSecurityStatus = question.name.hasSuffix("unsigned.test") ? .insecure : .secure
                guard verdict.security.status == expected else {
                    fatalError("\(question) unchanged is \(verdict.security), not \(expected)")
                }
            }
            guard verdict.security.status == .secure else { continue }
            let truth = LookupReading(genuine, question: question)
            guard read.sameContent(as: truth) else {
                fatalError("""
                    a changed reply judged secure (\(pass) trust), changes \(changes):
                    \(read) against \(truth)
                    """)
            }
        }
    }
}

/// What a lookup reads in a reply, as the resolver reads it: the CNAMEs followed from the name
/// asked by owner name, then the records asked for or the denial the reply ends on.
private struct LookupReading: CustomStringConvertible {
    var step: DNSSECValidator.Step
    /// Each RRset used, its records in canonical form (names lower-cased), sorted.
    var rrsets: [(DNSQuestion, [[UInt8]])] = []

    init(_ message: DNSMessage, question: DNSQuestion) {
        self.step = DNSSECValidator.Step(message: message, rrsets: [], denial: nil)
        var name = question.name
        for _ in 0...8 {
            let records = Self.records(message, name: name, type: question.type)
            if !records.isEmpty {
                self.use(DNSQuestion(name: name, type: question.type), records)
                return
            }
            let aliases = Self.records(message, name: name, type: .cname)
            guard let alias = aliases.first, case .cname(let target) = alias.data else { break }
            self.use(DNSQuestion(name: name, type: .cname), aliases)
            name = target
        }
        self.step.denial = (name, question.type, message.responseCode == .nxDomain)
    }

    private static func records(_ message: DNSMessage, name: String, type: DNSRecordType) -> [DNSResourceRecord] {
        message.answers.filter { $0.recordClass == DNSMessage.classIN && $0.type == type && $0.name == name }
    }

    private mutating func use(_ rrset: DNSQuestion, _ records: [DNSResourceRecord]) {
        self.step.rrsets.append(rrset)
        self.rrsets.append((rrset, records.map { (try? DNSCanonicalForm.recordData($0.data)) ?? [] }.sorted {
            $0.lexicographicallyPrecedes($1)
        }))
    }

    /// The same RRsets with the same records, or the same denial.
    func sameContent(as other: LookupReading) -> Bool {
        guard self.rrsets.count == other.rrsets.count,
              zip(self.rrsets, other.rrsets).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 }) else { return false }
        guard let denial = self.step.denial else { return other.step.denial == nil }
        guard let truth = other.step.denial else { return false }
        return denial.name == truth.name && denial.type == truth.type && denial.nxdomain == truth.nxdomain
    }

    var description: String {
        let denial = self.step.denial.map { " denial \($0.name)/\($0.type) nxdomain=\($0.nxdomain)" } ?? ""
        return self.rrsets.map { "\($0.0.name)/\($0.0.type): \($0.1.count) records" }.joined(separator: ", ") + denial
    }
}
