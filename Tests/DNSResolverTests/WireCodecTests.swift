import DNS
import Testing
@testable import DNSResolver

/// Builds packets by hand so that malformed wire data can be expressed exactly.
struct PacketBuilder {
    var bytes: [UInt8] = []

    static func header(id: UInt16 = 0x1234, flags: UInt16 = 0x8180, qd: UInt16 = 1, an: UInt16 = 0,
                       ns: UInt16 = 0, ar: UInt16 = 0) -> PacketBuilder {
        var builder = PacketBuilder()
        for value in [id, flags, qd, an, ns, ar] { builder.u16(value) }
        return builder
    }

    mutating func u16(_ value: UInt16) { self.bytes += [UInt8(value >> 8), UInt8(value & 0xff)] }
    mutating func u32(_ value: UInt32) { self.u16(UInt16(value >> 16)); self.u16(UInt16(value & 0xffff)) }
    mutating func raw(_ values: [UInt8]) { self.bytes += values }
    mutating func name(_ labels: [String]) {
        for label in labels {
            self.bytes.append(UInt8(label.utf8.count))
            self.bytes += Array(label.utf8)
        }
        self.bytes.append(0)
    }
}

func sampleMessage() -> DNSMessage {
    let soa = SOAData(mname: "ns1.example.com", rname: "hostmaster.example.com", serial: 2024010101,
                      refresh: 7200, retry: 3600, expire: 1_209_600, minimum: 300)
    return DNSMessage(
        header: DNSHeader(id: 0xBEEF, isResponse: true, authoritative: true, recursionDesired: true,
                          recursionAvailable: true, authenticData: true),
        questions: [DNSWireQuestion(name: "www.example.com", type: .a)],
        answers: [
            DNSResourceRecord(name: "www.example.com", ttl: 300, data: .cname("web.example.com")),
            DNSResourceRecord(name: "web.example.com", ttl: 60, data: .a(IPAddress("192.0.2.1")!)),
            DNSResourceRecord(name: "web.example.com", ttl: 60, data: .aaaa(IPAddress("2001:db8::1")!)),
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .mx(preference: 10, exchange: "mx1.example.com")),
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .mx(preference: 0, exchange: "")),
            DNSResourceRecord(name: "1.2.0.192.in-addr.arpa", ttl: 3600, data: .ptr("web.example.com")),
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .txt([Array("v=spf1 -all".utf8), [], [0, 255]])),
            DNSResourceRecord(name: "_smtp._tcp.example.com", ttl: 3600,
                              data: .srv(priority: 1, weight: 2, port: 25, target: "mx1.example.com")),
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .unknown(type: DNSRecordType(rawValue: 99), data: [1, 2, 3])),
        ],
        authority: [
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .ns("ns1.example.com")),
            DNSResourceRecord(name: "example.com", ttl: 3600, data: .soa(soa)),
        ],
        additional: [
            DNSResourceRecord(name: "ns1.example.com", ttl: 3600, data: .a(IPAddress("192.0.2.53")!)),
        ],
        edns: EDNS(udpPayloadSize: 1232, dnssecOK: true, options: [EDNS.Option(code: 15, data: [0, 6])])
    )
}

@Suite("Wire codec")
struct WireCodecTests {
    @Test("every record type survives a round trip, compressed and not")
    func roundTrip() throws {
        let message = sampleMessage()
        let compressed = try message.encoded()
        let plain = try message.encoded(compress: false)
        #expect(compressed.count < plain.count)
        #expect(try DNSMessage(decoding: compressed) == message)
        #expect(try DNSMessage(decoding: plain) == message)
    }

    @Test("a query carries EDNS0 with a 1232-octet buffer, and DO only when asked")
    func queryEDNS() throws {
        let question = DNSWireQuestion(name: "example.com", type: .mx)
        let validating = try DNSMessage(decoding: DNSMessage.query(id: 7, question: question, dnssecOK: true).encoded())
        #expect(validating.edns?.udpPayloadSize == 1232)
        #expect(validating.edns?.dnssecOK == true)
        #expect(validating.header.recursionDesired)
        #expect(validating.questions == [question])
        let plain = try DNSMessage(decoding: DNSMessage.query(id: 7, question: question, dnssecOK: false).encoded())
        #expect(plain.edns?.dnssecOK == false)
    }

    @Test("compression writes a pointer for a repeated suffix")
    func compressionPointer() throws {
        var message = DNSMessage(header: DNSHeader(id: 1), questions: [DNSWireQuestion(name: "a.example.com", type: .a)])
        message.answers = [DNSResourceRecord(name: "a.example.com", ttl: 1, data: .cname("b.example.com"))]
        let bytes = try message.encoded()
        // header 12 + question (15 + 4); the answer owner is a bare pointer to offset 12.
        #expect(bytes[31] == 0xC0 && bytes[32] == 12)
        #expect(try DNSMessage(decoding: bytes) == message)
    }

    @Test("extended response codes combine header and OPT bits")
    func extendedRcode() throws {
        var message = DNSMessage(header: DNSHeader(id: 1, isResponse: true), edns: EDNS())
        message.responseCode = .badVers
        let decoded = try DNSMessage(decoding: message.encoded())
        #expect(decoded.responseCode == .badVers)
        #expect(decoded.header.rcodeLow == 0)
    }

    @Test("names with dots, backslashes and non-ASCII octets inside labels round-trip through escapes")
    func escapedLabels() throws {
        var builder = PacketBuilder.header(qd: 1)
        builder.raw([3, UInt8(ascii: "a"), UInt8(ascii: "."), 0xFF, 2, UInt8(ascii: "B"), UInt8(ascii: "\\"), 0])
        builder.u16(1); builder.u16(1)
        let decoded = try DNSMessage(decoding: builder.bytes)
        #expect(decoded.questions[0].name == "a\\.\\255.b\\\\")
        #expect(try decoded.encoded(compress: false) == [UInt8](builder.bytes.prefix(12)) + [3, 0x61, 0x2E, 0xFF, 2, 0x62, 0x5C, 0, 0, 1, 0, 1])
    }

    @Test("a compression pointer to itself is a loop")
    func selfPointer() {
        var builder = PacketBuilder.header(qd: 1)
        builder.raw([0xC0, 12])
        builder.u16(1); builder.u16(1)
        #expect(throws: DNSWireError.self) { try DNSMessage(decoding: builder.bytes) }
        let error = try? expectWireError(builder.bytes)
        #expect(error?.code == .compressionLoop)
    }

    @Test("two pointers pointing at each other are a loop")
    func pointerCycle() {
        var builder = PacketBuilder.header(qd: 1, an: 1)
        builder.name(["a"])  // offset 12..14
        builder.u16(1); builder.u16(1)
        builder.raw([0xC0, 21])  // answer owner at offset 19 points forward to 21
        builder.raw([0xC0, 19])  // which points back to 19
        builder.u16(1); builder.u16(1); builder.u32(1); builder.u16(4); builder.raw([1, 2, 3, 4])
        #expect((try? expectWireError(builder.bytes))?.code == .compressionLoop)
    }

    @Test("a pointer past the end of the packet")
    func pointerPastEnd() {
        var builder = PacketBuilder.header(qd: 1)
        builder.raw([0xC0, 200])
        builder.u16(1); builder.u16(1)
        #expect((try? expectWireError(builder.bytes))?.code == .pointerOutOfBounds)
    }

    @Test("labels over 63 octets, on the wire and in text")
    func labelTooLong() {
        var builder = PacketBuilder.header(qd: 1)
        builder.raw([64] + [UInt8](repeating: 0x61, count: 64) + [0])
        builder.u16(1); builder.u16(1)
        #expect((try? expectWireError(builder.bytes))?.code == .labelTooLong)
        let long = String(repeating: "x", count: 64) + ".example"
        let message = DNSMessage(header: DNSHeader(), questions: [DNSWireQuestion(name: long, type: .a)])
        #expect(throws: DNSWireError.self) { try message.encoded() }
    }

    @Test("names over 255 octets, plain and assembled from pointers")
    func nameTooLong() {
        var builder = PacketBuilder.header(qd: 1)
        builder.name([String](repeating: String(repeating: "a", count: 63), count: 4))  // 4 × 64 + 1 = 257
        builder.u16(1); builder.u16(1)
        #expect((try? expectWireError(builder.bytes))?.code == .nameTooLong)

        // 200 octets of labels, then a second name that adds 60 and points back to the first.
        var chained = PacketBuilder.header(qd: 2)
        chained.name([String](repeating: String(repeating: "b", count: 49), count: 4))  // 201 octets at 12
        chained.u16(1); chained.u16(1)
        chained.raw([59] + [UInt8](repeating: 0x63, count: 59) + [0xC0, 12])
        chained.u16(1); chained.u16(1)
        #expect((try? expectWireError(chained.bytes))?.code == .nameTooLong)
    }

    @Test("counts larger than the packet")
    func countsTooLarge() {
        var builder = PacketBuilder.header(qd: 1, an: 500)
        builder.name(["example", "com"])
        builder.u16(1); builder.u16(1)
        #expect((try? expectWireError(builder.bytes))?.code == .truncatedPacket)
    }

    @Test("record data longer than the packet, and record data of the wrong size")
    func recordData() {
        var builder = PacketBuilder.header(qd: 0, an: 1)
        builder.name(["a"])
        builder.u16(1); builder.u16(1); builder.u32(60); builder.u16(100); builder.raw([1, 2, 3, 4])
        #expect((try? expectWireError(builder.bytes))?.code == .truncatedPacket)

        var wrongSize = PacketBuilder.header(qd: 0, an: 1)
        wrongSize.name(["a"])
        wrongSize.u16(1); wrongSize.u16(1); wrongSize.u32(60); wrongSize.u16(5); wrongSize.raw([1, 2, 3, 4, 5])
        #expect((try? expectWireError(wrongSize.bytes))?.code == .invalidRecordData)

        var mxShort = PacketBuilder.header(qd: 0, an: 1)
        mxShort.name(["a"])
        mxShort.u16(15); mxShort.u16(1); mxShort.u32(60); mxShort.u16(4); mxShort.raw([0, 10, 1, 0x61])
        #expect(throws: DNSWireError.self) { try DNSMessage(decoding: mxShort.bytes) }
    }

    @Test("OPT outside the additional section, twice, or not at the root")
    func badOPT() throws {
        let twice = DNSMessage(header: DNSHeader(), edns: EDNS())
        var bytes = try twice.encoded()
        bytes[11] = 2
        bytes += bytes.suffix(11)
        #expect((try? expectWireError(bytes))?.code == .invalidOPT)

        var inAnswer = PacketBuilder.header(qd: 0, an: 1)
        inAnswer.raw([0]); inAnswer.u16(41); inAnswer.u16(1232); inAnswer.u32(0); inAnswer.u16(0)
        #expect((try? expectWireError(inAnswer.bytes))?.code == .invalidOPT)
    }

    @Test("trailing octets after the last record")
    func trailing() throws {
        let bytes = try sampleMessage().encoded() + [0]
        #expect((try? expectWireError(bytes))?.code == .trailingData)
    }

    @Test("every prefix of a valid packet is a typed error")
    func everyPrefix() async throws {
        let bytes = try sampleMessage().encoded()
        let accepted = await onOwnThread {
            (0..<bytes.count).filter { (try? DNSMessage(decoding: Array(bytes.prefix($0)))) != nil }
        }
        #expect(accepted.isEmpty, "prefixes accepted: \(accepted)")
    }

    @Test("a TTL with the top bit set reads as zero (RFC 2181)")
    func topBitTTL() throws {
        var builder = PacketBuilder.header(qd: 0, an: 1)
        builder.name(["a"])
        builder.u16(1); builder.u16(1); builder.u32(0x8000_0001); builder.u16(4); builder.raw([1, 2, 3, 4])
        #expect(try DNSMessage(decoding: builder.bytes).answers[0].ttl == 0)
    }
}

/// Decodes and returns the error, failing the test if the packet was accepted.
func expectWireError(_ bytes: [UInt8]) throws -> DNSWireError {
    do {
        _ = try DNSMessage(decoding: bytes)
    } catch {
        return error
    }
    Issue.record("packet was accepted")
    throw DNSWireError(.trailingData, "accepted")
}

/// A small deterministic generator so that a failing fuzz case can be replayed by seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Wire codec fuzzing")
struct WireFuzzTests {
    static let seeds: [UInt64] = [1, 0xD15EA5E, 20_260_101]

    @Test("mutated packets never crash the decoder; accepted ones re-encode to the same message",
          arguments: WireFuzzTests.seeds)
    func mutate(seed: UInt64) async throws {
        // CPU-bound: run on a thread of its own so that the timing tests running alongside
        // keep Swift's two cooperative threads.
        let failures = await onOwnThread { Self.fuzz(seed: seed) }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// Returns the descriptions of every property violation found.
    static func fuzz(seed: UInt64) -> [String] {
        var failures: [String] = []
        do {
            try Self.fuzz(seed: seed, failures: &failures)
        } catch {
            failures.append("seed \(seed): \(error)")
        }
        return failures
    }

    static func fuzz(seed: UInt64, failures: inout [String]) throws {
        var random = SplitMix64(state: seed)
        var corpus: [[UInt8]] = [try sampleMessage().encoded(), try sampleMessage().encoded(compress: false)]
        var short = sampleMessage()
        short.answers = Array(short.answers.prefix(2))
        corpus.append(try short.encoded())
        corpus.append(try DNSMessage.query(id: 9, question: DNSWireQuestion(name: "x.example", type: .txt), dnssecOK: true).encoded())

        var accepted = 0
        var rejected = 0
        for _ in 0..<6000 {
            var packet = corpus[Int.random(in: 0..<corpus.count, using: &random)]
            let mutations = Int.random(in: 1...4, using: &random)
            for _ in 0..<mutations {
                guard !packet.isEmpty else { break }
                let position = Int.random(in: 0..<packet.count, using: &random)
                switch Int.random(in: 0..<7, using: &random) {
                case 0: packet[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
                case 1: packet[position] = UInt8.random(in: 0...255, using: &random)
                case 2: packet.removeSubrange(position...)
                case 3: packet.insert(UInt8.random(in: 0...255, using: &random), at: position)
                case 4: packet[position] = 0xC0  // a pointer start anywhere
                case 5 where packet.count > 12:
                    // Inflate one of the section counts.
                    let count = 4 + 2 * Int.random(in: 0..<4, using: &random)
                    packet[count + 1] &+= UInt8.random(in: 1...3, using: &random)
                default: packet[position] = [0, 63, 64, 0x3F, 0xFF][Int.random(in: 0..<5, using: &random)]
                }
            }
            let message: DNSMessage
            do {
                message = try DNSMessage(decoding: packet)
            } catch {
                rejected += 1
                continue
            }
            accepted += 1
            // What the decoder accepts, the encoder writes back to an equal message.
            let again = try DNSMessage(decoding: try message.encoded())
            if again != message { failures.append("seed \(seed): re-encoding changed \(packet)") }
        }
        if accepted == 0 || rejected == 0 { failures.append("seed \(seed): \(accepted) accepted, \(rejected) rejected") }
    }
}

/// Presentation-form names written to the wire in one pass (`DNSNameCoding.appendWireName`),
/// and the query packet written from its parts (`DNSMessage.queryPacket`).
@Suite("Wire names and query packets")
struct WireNameTests {
    static func wire(_ name: String) throws(DNSWireError) -> [UInt8] {
        var bytes: [UInt8] = []
        try DNSNameCoding.appendWireName(name, to: &bytes)
        return bytes
    }

    @Test("names as RFC 1035 writes them: labels, escapes, case kept, the root")
    func names() throws {
        #expect(try Self.wire("mail.Example.com") == [4] + Array("mail".utf8) + [7] + Array("Example".utf8) + [3] + Array("com".utf8) + [0])
        #expect(try Self.wire("mail.example.com.") == (try Self.wire("mail.example.com")))
        #expect(try Self.wire("") == [0])
        #expect(try Self.wire(".") == [0])
        #expect(try Self.wire("a\\.b.c") == [3, 0x61, 0x2E, 0x62, 1, 0x63, 0])
        #expect(try Self.wire("\\065bc\\\\") == [4, 0x41, 0x62, 0x63, 0x5C, 0])
        #expect(try Self.wire("x\\255\\000") == [3, 0x78, 0xFF, 0x00, 0])
        let longest = String(repeating: "a", count: 63)
        #expect(try Self.wire(longest + ".b") == [63] + Array(longest.utf8) + [1, 0x62, 0])
        // 255 octets on the wire: 127 one-octet labels and the zero.
        let widest = Array(repeating: "a", count: 127).joined(separator: ".")
        #expect(try Self.wire(widest).count == 255)
        #expect(try DNSNameCoding.labels(of: "a\\.b.C.") == [[0x61, 0x2E, 0x62], [0x43]])
        #expect(try DNSNameCoding.labels(of: ".").isEmpty)
    }

    @Test("what is no name, each with its reason", arguments: [
        ("a..b", "invalidName"), (".a", "invalidName"), ("a\\", "invalidName"), ("a\\1", "invalidName"),
        ("a\\1x2", "invalidName"), ("a\\256", "invalidName"),
        (String(repeating: "a", count: 64), "labelTooLong"), (String(repeating: "a", count: 64) + ".b", "labelTooLong"),
        (Array(repeating: "a", count: 128).joined(separator: "."), "nameTooLong"),
    ])
    func invalid(_ name: String, _ code: String) {
        do {
            _ = try Self.wire(name)
            Issue.record("'\(name)' was accepted")
        } catch {
            #expect(error.code.description == code, "'\(name)': \(error)")
        }
        #expect(throws: DNSWireError.self) { try DNSNameCoding.labels(of: name) }
    }

    @Test("a query packet is the query message encoded, for every kind of name and both DO settings", arguments: [
        "mail.example.com", "Mail.EXAMPLE.com.", "", "a\\.b.c", "x\\255y.example", "_spf.other.example",
        String(repeating: "a", count: 63) + ".example",
    ])
    func queryPacket(_ name: String) throws {
        for dnssecOK in [false, true] {
            for type in [DNSRecordType.a, .txt, .mx, .ds] {
                let question = DNSWireQuestion(name: name, type: type)
                let packet = try DNSMessage.queryPacket(id: 0xBEEF, question: question, dnssecOK: dnssecOK)
                #expect(packet == (try DNSMessage.query(id: 0xBEEF, question: question, dnssecOK: dnssecOK).encoded()))
                let decoded = try DNSMessage(decoding: packet)
                #expect(decoded.questions.count == 1 && decoded.questions[0].type == type)
                #expect(decoded.edns?.dnssecOK == dnssecOK)
            }
        }
        #expect(throws: DNSWireError.self) {
            try DNSMessage.queryPacket(id: 1, question: DNSWireQuestion(name: "a..b", type: .a), dnssecOK: false)
        }
    }
}

/// `DNSNameCoding.readName` reads over the packet's buffer into a scratch buffer on the stack.
/// Held here to a plain reader that follows RFC 1035 §4.1.4 one octet at a time, with the same
/// limits, on names built to hit every rule: labels at and past 63 octets, pointers backwards,
/// forwards, to themselves and past the end, chains of them, names that end early, names read
/// from a slice that ends before the packet does (a name inside record data), every octet value.
@Suite("Wire names against a plain reader")
struct WireNameReaderTests {
    /// What the plain reader makes of the name at `start`, read no further than `end` before
    /// the first pointer: the text and where the input goes on, or the error's code and reason.
    static func plainRead(_ packet: [UInt8], start: Int, end: Int) -> String {
        var text = ""
        var wireLength = 1
        var hops = 0
        var position = start
        var limit = end
        var next: Int?
        while true {
            guard position < limit else { return "error truncatedPacket: packet ends inside a name" }
            let length = Int(packet[position])
            if length == 0 { return "\(text) @\(next ?? position + 1)" }
            if length & 0xC0 == 0xC0 {
                guard position + 1 < limit else { return "error truncatedPacket: packet ends inside a compression pointer" }
                let target = (length & 0x3F) << 8 | Int(packet[position + 1])
                guard target < packet.count else {
                    return "error pointerOutOfBounds: pointer at offset \(position) to \(target), packet has \(packet.count) octets"
                }
                guard target < position else {
                    return "error compressionLoop: pointer at offset \(position) to \(target) does not point backwards"
                }
                hops += 1
                guard hops <= 127 else { return "error compressionLoop: more than 127 compression pointers" }
                if next == nil { next = position + 2 }
                position = target
                limit = packet.count
                continue
            }
            if length & 0xC0 == 0x40 { return "error labelTooLong: label length \(length) over 63 at offset \(position)" }
            if length & 0xC0 == 0x80 { return "error invalidLabelType: reserved label type 0b10 at offset \(position)" }
            wireLength += length + 1
            guard wireLength <= 255 else { return "error nameTooLong: name longer than 255 octets at offset \(position)" }
            guard limit - (position + 1) >= length else {
                return "error truncatedPacket: packet ends inside a label (\(length) octets announced, \(limit - position - 1) left)"
            }
            if !text.isEmpty { text += "." }
            for byte in packet[(position + 1)...(position + length)] {
                switch byte {
                case 0x41...0x5A: text += String(UnicodeScalar(byte | 0x20))
                case 0x2E, 0x5C: text += "\\" + String(UnicodeScalar(byte))
                case 0x21...0x7E: text += String(UnicodeScalar(byte))
                default: text += "\\" + String(format: "%03d", Int(byte))
                }
            }
            position += length + 1
        }
    }

    static func read(_ packet: [UInt8], start: Int, end: Int) -> String {
        var input = packet[start..<end]
        do {
            let name = try DNSNameCoding.readName(&input, message: packet)
            #expect(input.endIndex == end)
            return "\(name) @\(input.startIndex)"
        } catch {
            return "error \(error.code): \(error.reason)"
        }
    }

    /// A packet of runs that look like names: labels of chosen lengths and octets, pointers to
    /// chosen offsets, zeros, and junk.
    static func packet(_ random: inout SplitMix64) -> [UInt8] {
        var bytes: [UInt8] = (0..<Int.random(in: 0...12, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        while bytes.count < Int.random(in: 1...400, using: &random) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0...4:
                let length = [1, 3, 8, 62, 63, 64, 127].randomElement(using: &random)!
                bytes.append(UInt8(length))
                let alphabet: [UInt8] = [0x61, 0x41, 0x2D, 0x2E, 0x5C, 0x20, 0x00, 0xFF, 0x7E, 0x7F]
                bytes += (0..<length).map { _ in alphabet.randomElement(using: &random)! }
            case 5, 6:
                let target = Int.random(in: 0...(bytes.count + 20), using: &random)
                bytes += [0xC0 | UInt8((target >> 8) & 0x3F), UInt8(target & 0xFF)]
            case 7:
                bytes.append(0)
            default:
                bytes.append(UInt8.random(in: 0...255, using: &random))
            }
        }
        return bytes
    }

    @Test("the same names, the same next offsets and the same errors as a plain reader, on 30,000 built packets")
    func sameAsPlainReader() {
        var random = SplitMix64(state: 0x5EED_4A3E)
        var names = 0
        var errors: Set<String> = []
        for _ in 0..<30_000 {
            let packet = Self.packet(&random)
            let start = Int.random(in: 0..<packet.count, using: &random)
            // Half read to the packet's end; half from a slice that ends earlier, as record data does.
            let end = Bool.random(using: &random) ? packet.count : Int.random(in: start...packet.count, using: &random)
            let expected = Self.plainRead(packet, start: start, end: end)
            let got = Self.read(packet, start: start, end: end)
            #expect(got == expected, "packet \(packet) from \(start) to \(end)")
            if got.hasPrefix("error ") { errors.insert(String(got.dropFirst(6).prefix { $0 != ":" })) } else { names += 1 }
            if got != expected { break }
        }
        // Every rule was hit, and so were plenty of names.
        #expect(errors == ["truncatedPacket", "pointerOutOfBounds", "compressionLoop", "labelTooLong", "nameTooLong",
                           "invalidLabelType"])
        #expect(names > 3_000)
    }
}
