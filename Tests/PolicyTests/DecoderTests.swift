import ListenAddress
import NIOCore
import NIOEmbedded
@testable import Policy
import Testing

@Suite("Policy request decoder")
struct DecoderTests {
    func channel(_ limits: PolicyProtocolLimits = PolicyProtocolLimits()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PolicyRequestDecoder(limits: limits)))
        return channel
    }

    func write(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(channel.allocator.buffer(string: text))
    }

    @Test("requests end at an empty line; CRLF, several per write and split writes all work")
    func framing() throws {
        let channel = try self.channel()
        try self.write(channel, "request=smtpd_access_policy\r\nqueue_id=Q1\r\nprotocol_state=RCPT\r\n\r\n"
            + "request=smtpd_access_policy\nstress=ye\nprotocol_state=MA")
        let first = try #require(try channel.readInbound(as: PolicyRequest.self))
        #expect(first["protocol_state"] == "RCPT")
        #expect(first["queue_id"] == "Q1")
        #expect(first.attributes == ["request": "smtpd_access_policy", "queue_id": "Q1", "protocol_state": "RCPT"])
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
        try self.write(channel, "IL\nqueue_id=Q2\r")
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
        try self.write(channel, "\nsender=\n\n")
        let second = try #require(try channel.readInbound(as: PolicyRequest.self))
        #expect(second["protocol_state"] == "MAIL")
        #expect(second["stress"] == "ye")
        #expect(second["queue_id"] == "Q2")
        #expect(second["sender"] == nil)
        #expect(second.attributes["sender"] == "")
        #expect(try channel.finish().isClean)
    }

    @Test("a connection's requests each get their own values, whether a slot's bytes repeat the last request's or not")
    func valuesAcrossRequests() throws {
        let channel = try self.channel()
        let senders = ["a@x.test", "b@x.test", "b@x.test", "", "b@x.test", "é@x.test", "é@x.test", "c@x.test"]
        for (index, sender) in senders.enumerated() {
            // A value once sent and once missing; one cut across two writes.
            let recipient = index % 3 == 0 ? "" : "recipient=r\(index % 2)@y.test\n"
            try self.write(channel, "request=smtpd_access_policy\nsender=\(sender)\n\(recipient)instance=i\(index / 2)\nclient_na")
            try self.write(channel, "me=mx.test\n\n")
            let request = try #require(try channel.readInbound(as: PolicyRequest.self))
            #expect(request.value(.sender) == sender, "request \(index)")
            #expect(request[.sender] == (sender.isEmpty ? nil : sender))
            #expect(request.value(.recipient) == (recipient.isEmpty ? nil : "r\(index % 2)@y.test"), "request \(index)")
            #expect(request[.instance] == "i\(index / 2)")
            #expect(request[.clientName] == "mx.test")
            #expect(request.attributes["recipient"] == (recipient.isEmpty ? nil : "r\(index % 2)@y.test"))
        }
        #expect(try channel.finish().isClean)
    }

    @Test("every attribute is kept: a name sent twice has its last value; names vrules reads and others alike, UTF-8 too")
    func attributesKept() throws {
        let channel = try self.channel()
        try self.write(channel, "request=smtpd_access_policy\nsender=a@x.test\nqueue_id=1\nsender=b@x.test\nqueue_id=2\n"
            + "stress=\nrecipient=j\u{f6}rg@b\u{fc}cher.example\nccert_subject=CN=m\u{fc}\n\n")
        let request = try #require(try channel.readInbound(as: PolicyRequest.self))
        #expect(request["sender"] == "b@x.test")
        #expect(request["queue_id"] == "2")
        #expect(request["stress"] == nil)
        #expect(request["recipient"] == "j\u{f6}rg@b\u{fc}cher.example")
        #expect(request["ccert_subject"] == "CN=m\u{fc}")
        #expect(request.attributes == [
            "request": "smtpd_access_policy", "sender": "b@x.test", "queue_id": "2", "stress": "",
            "recipient": "j\u{f6}rg@b\u{fc}cher.example", "ccert_subject": "CN=m\u{fc}",
        ])
        #expect(request == PolicyRequest(attributes: request.attributes))
        #expect(try channel.finish().isClean)
    }

    @Test("a value may contain '='")
    func equalsInValue() throws {
        let channel = try self.channel()
        try self.write(channel, "ccert_subject=CN=mail,O=x\n\n")
        #expect(try channel.readInbound(as: PolicyRequest.self)?["ccert_subject"] == "CN=mail,O=x")
    }

    @Test("malformed input is a protocol error", arguments: [
        ("no equals sign\n\n", PolicyProtocolError.Code.malformedAttribute),
        ("=value\n\n", .malformedAttribute),
        ("name=va\u{01}lue\n\n", .invalidBytes),
        ("name=\u{00}\n\n", .invalidBytes),
    ])
    func malformed(text: String, code: PolicyProtocolError.Code) throws {
        let channel = try self.channel()
        #expect(self.failure(channel, Array(text.utf8)) == code)
        _ = try? channel.finish()
    }

    /// The code of the protocol error writing `bytes` (in the reads given) raises, nil if none.
    func failure(_ channel: EmbeddedChannel, _ reads: [UInt8]...) -> PolicyProtocolError.Code? {
        do {
            for bytes in reads { try channel.writeInbound(channel.allocator.buffer(bytes: bytes)) }
            return nil
        } catch let error as PolicyProtocolError {
            return error.code
        } catch {
            return nil
        }
    }

    /// The lines of a read are checked sixteen bytes at a time and then byte by byte: a bad
    /// byte is found wherever it lies, alone or beside others, and the bytes that may appear
    /// (tab, CR LF line ends, UTF-8) pass in every position.
    @Test("every control byte but tab, DEL and a CR not ending a line are refused wherever they lie")
    func controlBytesAnywhere() throws {
        let prefix = Array("request=smtpd_access_policy\nclient_address=192.0.2.1\nccert_subject=".utf8)
        let value = Array("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ".utf8)
        for bad: UInt8 in [0x00, 0x01, 0x08, 0x0B, 0x0C, 0x0D, 0x1B, 0x1F, 0x7F] {
            // A CR last in the value ends the line (CR LF): allowed.
            for position in 0..<value.count where !(bad == 0x0D && position == value.count - 1) {
                var line = value
                line[position] = bad
                let channel = try self.channel()
                #expect(self.failure(channel, prefix + line + Array("\n\n".utf8)) == .invalidBytes, "byte \(bad) at \(position)")
                _ = try? channel.finish()
            }
        }
        for good in ["\t", "\u{e9}", "\u{1F600}"] {
            for position in 0..<value.count {
                var line = value
                line.replaceSubrange(position..<position + 1, with: Array(good.utf8))
                let channel = try self.channel()
                #expect(self.failure(channel, prefix + line + Array("\r\n\r\n".utf8)) == nil, "\(good) at \(position)")
                #expect(try channel.readInbound(as: PolicyRequest.self)?["ccert_subject"] == String(decoding: line, as: UTF8.self))
                _ = try? channel.finish()
            }
        }
    }

    @Test("a faulty line's bytes and the lines before it are judged in the order they came",
          arguments: [
              // An earlier line's control byte before a later line's missing '='.
              (["a=\u{01}\nno equals sign\n\n"], PolicyProtocolError.Code.invalidBytes),
              // The missing '=' first, then a control byte in a later line: never read.
              (["no equals sign\na=\u{01}\n\n"], .malformedAttribute),
              // A control byte in the line without '=' itself.
              (["no equals\u{7f}\n\n"], .invalidBytes),
              // A CR in the middle of a line, and one doubled before the line end.
              (["a=b\rc\n\n"], .invalidBytes),
              (["a=b\r\r\n\n"], .invalidBytes),
              // Split reads: the bad byte in the first read, the line end in the second.
              (["a=b\u{01}", "c\n\n"], .invalidBytes),
              // UTF-8 cut by a line end, and cut by a read.
              (["a=\u{e9}"], nil),
          ])
    func faultOrder(reads: [String], code: PolicyProtocolError.Code?) throws {
        let channel = try self.channel()
        do {
            for read in reads { try self.write(channel, read) }
            #expect(code == nil)
        } catch let error as PolicyProtocolError {
            #expect(error.code == code)
        }
        _ = try? channel.finish()
    }

    @Test("the first faulty line's fault is the one reported, whether its request comes in one read or a byte at a time",
          arguments: [
              // Found by scripts/fuzz.sh (policy-request): invalid UTF-8, then a NUL in a later line.
              ([0x61, 0x3D, 0xFF, 0x0A, 0x62, 0x3D, 0x00, 0x0A, 0x0A], "an attribute that is not UTF-8"),
              ([0x61, 0x3D, 0x00, 0x0A, 0x62, 0x3D, 0xFF, 0x0A, 0x0A], "control characters in an attribute"),
              ([0x61, 0x3D, 0xC3, 0x0A, 0x62, 0x3D, 0x7F, 0x0A, 0x0A], "an attribute that is not UTF-8"),
          ])
    func firstFaultReported(bytes: [UInt8], reason: String) throws {
        var whole = PolicyRequestDecoder()
        var buffer = ByteBufferAllocator().buffer(bytes: bytes)
        #expect(throws: PolicyProtocolError(code: .invalidBytes, reason: reason)) { try whole.decode(buffer: &buffer) }
        var byByte = PolicyRequestDecoder()
        var pieces = ByteBufferAllocator().buffer(capacity: bytes.count)
        #expect(throws: PolicyProtocolError(code: .invalidBytes, reason: reason)) {
            for byte in bytes {
                pieces.writeInteger(byte)
                while try byByte.decode(buffer: &pieces) != nil {}
            }
        }
    }

    @Test("UTF-8 cut by a line end is refused; cut by a read, it is whole once the rest comes")
    func utf8AcrossBoundaries() throws {
        let cutByLine = try self.channel()
        #expect(self.failure(cutByLine, [0x61, 0x3D, 0xC3, 0x0A, 0xA9, 0x0A, 0x0A]) == .invalidBytes)
        _ = try? cutByLine.finish()
        let cutByRead = try self.channel()
        #expect(self.failure(cutByRead, [0x61, 0x3D, 0xC3], [0xA9, 0x0A, 0x0A]) == nil)
        #expect(try cutByRead.readInbound(as: PolicyRequest.self)?["a"] == "\u{e9}")
        _ = try? cutByRead.finish()
    }

    @Test("invalid UTF-8 is refused")
    func binary() throws {
        let channel = try self.channel()
        #expect(throws: PolicyProtocolError.self) {
            try channel.writeInbound(channel.allocator.buffer(bytes: Array("name=".utf8) + [0xff, 0xfe, 0x0a, 0x0a]))
        }
        _ = try? channel.finish()
    }

    @Test("limits: line length, with or without an end of line, and attribute count")
    func limits() throws {
        let limits = PolicyProtocolLimits(maximumLineLength: 64, maximumAttributes: 3)
        let long = try self.channel(limits)
        #expect(throws: PolicyProtocolError.self) { try self.write(long, "name=" + String(repeating: "x", count: 100) + "\n") }
        _ = try? long.finish()
        let endless = try self.channel(limits)
        #expect(throws: PolicyProtocolError.self) { try self.write(endless, String(repeating: "y", count: 100)) }
        _ = try? endless.finish()
        let many = try self.channel(limits)
        #expect(throws: PolicyProtocolError.self) { try self.write(many, "a=1\nb=2\nc=3\nd=4\n\n") }
        _ = try? many.finish()
        let fine = try self.channel(limits)
        try self.write(fine, "a=1\nb=2\nc=3\n\na=1\nb=2\nc=3\n\n")
        #expect(try fine.readInbound(as: PolicyRequest.self) != nil)
        #expect(try fine.readInbound(as: PolicyRequest.self) != nil)
    }

    @Test("a request's lines are bounded in all: past the bound it is refused, in one read or a line at a time; each request counts anew")
    func requestSize() throws {
        // The defaults: 16 KiB lines, 128 attributes, 64 KiB in all.
        let line = "a=" + String(repeating: "x", count: 16_000) + "\n"
        for split in [false, true] {
            let large = try self.channel()
            let text = String(repeating: line, count: 5) + "\n"
            let error = #expect(throws: PolicyProtocolError.self) {
                if split {
                    for _ in 0..<5 { try self.write(large, line) }
                    try self.write(large, "\n")
                } else {
                    try self.write(large, text)
                }
            }
            #expect(error?.code == .requestTooLarge)
            #expect(error?.reason == "more than 65536 bytes")
            _ = try? large.finish()
        }
        // Four such lines are under the bound, and so is each of several requests in a row.
        let fine = try self.channel()
        for _ in 0..<3 { try self.write(fine, String(repeating: line, count: 4) + "\n") }
        for _ in 0..<3 { #expect(try fine.readInbound(as: PolicyRequest.self) != nil) }
        _ = try? fine.finish()
    }

    @Test("a request cut off by the end of the connection gets no answer")
    func truncated() throws {
        let channel = try self.channel()
        try self.write(channel, "request=smtpd_access_policy\nprotocol_state=RCPT\n")
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
        _ = try channel.finish()
        #expect(try channel.readInbound(as: PolicyRequest.self) == nil)
    }

    @Test("listen addresses")
    func addresses() {
        #expect(ListenAddress("127.0.0.1:10040") == .tcp(host: "127.0.0.1", port: 10040))
        #expect(ListenAddress("[::1]:25") == .tcp(host: "::1", port: 25))
        #expect(ListenAddress("unix:/run/v.sock") == .unix(path: "/run/v.sock"))
        #expect(ListenAddress("nonsense") == nil)
        #expect(ListenAddress("host:99999") == nil)
        #expect(ListenAddress("unix:") == nil)
        #expect(ListenAddress("host:+25") == nil)
        #expect(ListenAddress("host:0025") == .tcp(host: "host", port: 25))
        let long = "unix:/" + String(repeating: "a", count: 107)
        #expect(ListenAddress(String(long.dropLast())) != nil)
        func problem(_ text: String) -> String? {
            guard case .failure(let problem) = ListenAddress.parse(text) else { return nil }
            return problem.reason
        }
        #expect(problem("host:99999") == "port 99999 is not 0 to 65535")
        #expect(problem("host:18446744073709551617") == "port 18446744073709551617 is not 0 to 65535")
        #expect(problem("unix:") == "no path after 'unix:'")
        #expect(problem(long) == "the path is too long for a socket (108 bytes; 107 at most)")
        #expect(problem("[::1]25") == "not HOST:PORT, [IPV6]:PORT or unix:PATH")
    }

    @Test("listen addresses that cannot all be bound", arguments: [
        (["127.0.0.1:10040", "127.0.0.1:10040"], "127.0.0.1:10040 is listed twice"),
        (["unix:/run/v.sock", "127.0.0.1:1", "unix:/run/v.sock"], "unix:/run/v.sock is listed twice"),
        (["0.0.0.0:25", "127.0.0.1:25"], "0.0.0.0:25 and 127.0.0.1:25 both take port 25 (0.0.0.0 is every IPv4 address)"),
        (["[::1]:25", "[::]:25"], "[::1]:25 and [::]:25 both take port 25 (:: is every address)"),
        (["[::]:25", "192.0.2.1:25"], "[::]:25 and 192.0.2.1:25 both take port 25 (:: is every address)"),
        (["0.0.0.0:25", "[::1]:25"], nil),
        (["0.0.0.0:25", "127.0.0.1:26"], nil),
        (["127.0.0.1:0", "127.0.0.1:0"], nil),
        (["localhost:25", "0.0.0.0:25"], nil),
    ] as [([String], String?)])
    func conflicts(texts: [String], conflict: String?) {
        #expect(ListenAddress.conflict(in: texts.compactMap(ListenAddress.init)) == conflict)
    }
}

@Suite("Slotted request attributes")
struct PolicyAttributeTests {
    @Test("every slotted name finds its slot, and no other name Postfix sends does")
    func names() {
        for attribute in PolicyAttribute.allCases {
            #expect(PolicyAttribute(attribute.name) == attribute)
            // The same length and ends, another byte inside: not the attribute.
            var altered = Array(attribute.name.utf8)
            altered[altered.count / 2] = UInt8(ascii: "#")
            #expect(PolicyAttribute(String(decoding: altered, as: UTF8.self)) == nil)
        }
        let others = ["protocol_name", "queue_id", "recipient_count", "reverse_client_name", "sasl_sender", "size",
                      "ccert_subject", "ccert_issuer", "ccert_fingerprint", "ccert_pubkey_fingerprint", "encryption_keysize",
                      "etrn_domain", "stress", "policy_context", "compatibility_level", "mail_version", "", "x", "client"]
        for name in others { #expect(PolicyAttribute(name) == nil, "\(name)") }
    }
}
