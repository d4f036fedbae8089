import Configuration
import DNS
import DNSResolver
import Foundation
import Lint
import Logging
import NIOCore
import Policy
import Rules
import TOML

/// The parsers that read what a peer, a DNS server or an operator sends, each run on one input
/// with the properties it must keep. A broken property stops the process (`fatalError`), which
/// is what libFuzzer reports as a finding; bad input itself must only ever be an error.
enum FuzzTarget: String, CaseIterable {
    /// A DNS reply as a server (or a spoofer) sends it: decoded, or refused with an error; what
    /// decodes encodes again to a message that decodes to the same.
    case dnsMessage = "dns-message"
    /// A policy request stream from a client: the same requests (or the same error) whether the
    /// bytes arrive at once or in pieces.
    case policyRequest = "policy-request"
    /// A DNSKEY's key field and an RRSIG's signature as a DNS server sends them (the first byte
    /// the algorithm, the rest split at the first 0xFF 0x00 pair into the key, the signature
    /// and the signed data): the key decodes or is refused, the signature verifies or not.
    case dnssecKey = "dnssec-key"
    /// A signed hierarchy's replies changed as a lying server would change them, validated as
    /// a lookup is (DNSSECChainFuzz): an answer judged secure says what the signed zone says.
    case dnssecChain = "dnssec-chain"
    /// Policy requests with the values a client controls (HELO name, sender, recipients...),
    /// each decided by the shipped default policy (rules/main.lua) on the example zone, as
    /// `vrules serve --zone examples/example.zone` decides them: every answer is one line of
    /// printable text (tabs allowed).
    case policySession = "policy-session"
    /// An SPF check of what a sender controls, the parts of the input split at NULs: the record
    /// its domain publishes, the record of the domain that one includes or redirects to, the
    /// MAIL FROM local part and the HELO name the client sends. Every check ends on the zone
    /// resolver within the RFC 7208 limits, errors give a reason, and an explanation is
    /// printable ASCII.
    case spfRecord = "spf-record"
    /// A rule script as `vrules check` reads it: diagnostics, never a crash (the linter
    /// compiles it and reads the bytecode luac made of it).
    case luaCheck = "lua-check"
    /// A configuration file as `vrules serve --config` and `vrules check` read it: a
    /// configuration, or mistakes each with a file, a position and a message.
    case config
    /// A TOML document: parsed, or an error.
    case toml
    /// A zone file, as `vrules run --zone` and `vrules serve --zone` read it: parsed, or an error.
    case zoneFile = "zone-file"
    /// A domain name as a script, a client (HELO, MAIL FROM) or a reply gives it, U-labels and
    /// RFC 1035 escapes included: refused with a reason, or normalised to a name that
    /// normalises to itself, that a query can carry, and that reads back from the wire the same.
    case dnsName = "dns-name"
    /// A rule script as an operator (or whoever can write to the rules directory) writes it:
    /// the input's first part (up to a NUL) runs at the script's top level, the rest is the
    /// body of one rule attached to every stage. Under tight limits it is loaded, played as a
    /// `vrules run` session and asked as `vrules serve` is asked, on the example zone: the
    /// host never crashes, every stage ends in a verdict whose reply is a valid SMTP reply of
    /// its kind (a script's failure is 451 4.3.0), and every policy answer is one line of
    /// printable text.
    case ruleScript = "rule-script"
    /// A rule test file as `vrules test` reads it: loaded, or refused with a reason; when it
    /// loads, each of its tests runs to a result, and each failure says why.
    case testFile = "test-file"

    func run(_ input: [UInt8]) {
        switch self {
        case .dnsMessage: Self.dnsMessage(input)
        case .dnssecKey: Self.dnssecKey(input)
        case .dnssecChain: DNSSECChainFuzz.run(input)
        case .policyRequest: Self.policyRequest(input)
        case .policySession: Self.policySession(input)
        case .spfRecord: Self.spfRecord(input)
        case .luaCheck: Self.luaCheck(input)
        case .config: Self.config(input)
        case .toml: _ = try? TOML.parse(input)
        case .zoneFile: _ = try? ZoneFile.parseContents(String(decoding: input, as: UTF8.self), origin: "fuzz.test")
        case .dnsName: Self.dnsName(input)
        case .ruleScript: RuleScriptFuzz.run(input)
        case .testFile: TestFileFuzz.run(input)
        }
    }

    private static func dnsName(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        let name: String
        do {
            name = try DNSName.normalize(text)
        } catch {
            guard !error.reason.isEmpty else { fatalError("refused without a reason: \(text.debugDescription)") }
            return
        }
        guard (try? DNSName.normalize(name)) == name else {
            fatalError("normalising \(text.debugDescription) twice changes it: \(name.debugDescription)")
        }
        var wire: [UInt8] = []
        do {
            try DNSNameCoding.appendWireName(name, to: &wire)
        } catch {
            fatalError("\(name.debugDescription), from \(text.debugDescription), cannot be asked for: \(error)")
        }
        var slice = wire[...]
        guard let read = try? DNSNameCoding.readUncompressedName(&slice), read == name, slice.isEmpty else {
            fatalError("\(name.debugDescription) reads back from the wire as something else")
        }
    }

    private static func dnsMessage(_ input: [UInt8]) {
        guard let message = try? DNSMessage(decoding: input) else { return }
        let again: DNSMessage
        do {
            again = try DNSMessage(decoding: try message.encoded())
        } catch {
            fatalError("a decoded message does not encode and decode again: \(error)\n\(message)")
        }
        guard again == message else { fatalError("decode(encode(m)) != m:\n\(message)\n\(again)") }
    }

    private static func config(_ input: [UInt8]) {
        let (configuration, errors) = VrulesConfiguration.check(input, file: "fuzz.toml", resolvConfPath: "/dev/null")
        guard (configuration == nil) != errors.isEmpty else {
            fatalError("a configuration and \(errors.count) mistakes at once, or neither")
        }
        if let empty = errors.first(where: { $0.message.isEmpty }) { fatalError("a mistake without a message: \(empty)") }
    }

    private static func dnssecKey(_ input: [UInt8]) {
        guard let algorithm = input.first else { return }
        var parts: [[UInt8]] = [[]]
        var index = 1
        while index < input.count {
            if parts.count < 3, input[index] == 0xFF, index + 1 < input.count, input[index + 1] == 0x00 {
                parts.append([])
                index += 2
                continue
            }
            parts[parts.count - 1].append(input[index])
            index += 1
        }
        while parts.count < 3 { parts.append([]) }
        // The algorithms vrules validates, most of the time; any other number now and then.
        let numbers: [UInt8] = [5, 7, 8, 10, 13, 14, 15]
        let number = algorithm < 0xF0 ? numbers[Int(algorithm) % numbers.count] : algorithm
        guard case .success(let key) = DNSSECPublicKey.decode(algorithm: number, publicKey: parts[0]) else { return }
        _ = key.verify(algorithm: number, signature: parts[1], data: parts[2])
    }

    private static func policyRequest(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let stream = Array(input.dropFirst())
        let whole = Self.decodeRequests(stream, pieceSize: stream.count)
        let pieces = Self.decodeRequests(stream, pieceSize: Int(first % 37) + 1)
        guard whole == pieces else {
            fatalError("the requests depend on how the bytes arrive:\n\(whole)\n\(pieces)")
        }
    }

    /// The services of `policy-session`, made once: the default policy and the example zone,
    /// read from the repository (the current directory, as scripts/fuzz.sh runs it), enforced
    /// and in a dry run (with two recipients a transaction, so that the bound refuses too).
    private static let service = Self.makeService(PolicyService.Configuration(maximumTransactions: 1_000))
    private static let dryRunService = Self.makeService(
        PolicyService.Configuration(maximumTransactions: 1_000, maximumRecipients: 2, dryRun: true))

    private static func makeService(_ configuration: PolicyService.Configuration) -> PolicyService {
        do {
            let path = "examples/example.zone"
            let records = try ZoneFile.parse(try String(contentsOfFile: path, encoding: .utf8), path: path)
            let engine = try RuleEngine(scriptPath: "rules/main.lua", resolvers: SingleResolver(ZoneResolver(records: records)),
                                        tracing: false)
            var quiet = Logger(label: "vrules.fuzz")
            quiet.logLevel = .critical
            return PolicyService(engines: [engine], configuration: configuration, logger: quiet)
        } catch {
            fatalError("policy-session needs rules/main.lua and examples/example.zone in the current directory: \(error)")
        }
    }

    private static func policySession(_ input: [UInt8]) {
        var decoder = PolicyRequestDecoder()
        var buffer = ByteBufferAllocator().buffer(bytes: input)
        for _ in 0..<8 {
            guard let request = try? decoder.decode(buffer: &buffer) else { return }
            // What the server itself refuses before any rule runs.
            guard request.garbled == nil else { continue }
            // A rule may fail here, as designed: a name that is no valid domain (`a@☃.example`)
            // is a script error, which defers with 451 4.3.0 and logs the name. What must hold
            // is the answer.
            let answer = Self.wait { await Self.service.decide(request).action }
            Self.checkLine(answer)
            // A dry run refuses nothing: whatever the rules decide, a bound or an unknown state.
            let dryRunAnswer = Self.wait { await Self.dryRunService.decide(request).action }
            Self.checkLine(dryRunAnswer)
            guard dryRunAnswer == "DUNNO" || dryRunAnswer.hasPrefix("PREPEND ") else {
                fatalError("a dry run answered \(dryRunAnswer)")
            }
        }
    }

    /// A policy answer must be one line of printable text. A tab may stand in a reply's text
    /// (RFC 5321 textstring) and in a header's value (folding white space, RFC 5322): a
    /// sender's address can carry one into Received-SPF. A header's line is at most 998
    /// characters; a reply's text is bounded too.
    static func checkLine(_ answer: String) {
        let limit = answer.hasPrefix("PREPEND ") ? "PREPEND ".utf8.count + MessageHeader.maximumLength : 512
        guard !answer.isEmpty, answer.utf8.count <= limit,
              answer.unicodeScalars.allSatisfy({ ($0.value >= 0x20 && $0.value != 0x7f) || $0 == "\t" }) else {
            fatalError("an answer that is not one line of printable text: \(Array(answer.utf8))")
        }
    }

    /// Runs async work to its end from the fuzzer's thread.
    static func wait<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let outcome = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            outcome.value = await work()
            done.signal()
        }
        done.wait()
        return outcome.value!
    }

    private final class Outcome<T>: @unchecked Sendable {
        var value: T?
    }

    /// The requests a connection reads, and the error that ends it, if any.
    private static func decodeRequests(_ stream: [UInt8], pieceSize: Int) -> [String] {
        var decoder = PolicyRequestDecoder(limits: PolicyProtocolLimits(maximumLineLength: 256, maximumAttributes: 16,
                                                                                maximumRequestSize: 1_024))
        var buffer = ByteBufferAllocator().buffer(capacity: stream.count)
        var decoded: [String] = []
        var offset = 0
        repeat {
            let end = min(stream.count, offset + max(pieceSize, 1))
            buffer.writeBytes(stream[offset..<end])
            offset = end
            do {
                while let request = try decoder.decode(buffer: &buffer) {
                    decoded.append(request.attributes.sorted { $0.key < $1.key }.description)
                }
            } catch {
                decoded.append(Self.describe(error))
                return decoded
            }
        } while offset < stream.count
        do {
            while let request = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
                decoded.append(request.attributes.sorted { $0.key < $1.key }.description)
            }
        } catch {
            decoded.append(Self.describe(error))
        }
        return decoded
    }

    /// An error as the property compares it: a line too long is found as soon as the bytes
    /// read exceed the limit, so its reason (how many there were) depends on the reads.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? PolicyProtocolError else { return "error: \(error)" }
        return error.code == .lineTooLong ? "error: \(error.code)" : "error: \(error)"
    }

    /// The directory the script is written to, one per process.
    static let scriptDirectory: String = {
        let path = NSTemporaryDirectory() + "vrules-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    private static func luaCheck(_ input: [UInt8]) {
        let path = Self.scriptDirectory + "/rules.lua"
        guard FileManager.default.createFile(atPath: path, contents: Data(input)) else {
            fatalError("cannot write \(path)")
        }
        _ = try? Linter().run(LintRequest(paths: [path]))
    }

    private static func spfRecord(_ input: [UInt8]) {
        let parts = input.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false).map { Array($0) }
        func part(_ index: Int) -> [UInt8] { index < parts.count ? parts[index] : [] }
        let records: [DNSRecord] = [
            DNSRecord(name: "t.test", ttl: 300, data: .txt([part(0)])),
            DNSRecord(name: "r.test", ttl: 300, data: .txt([part(1)])),
            DNSRecord(name: "loop.test", ttl: 300, data: .txt([Array("v=spf1 include:loop.test mx:mx.test a ptr -all".utf8)])),
            DNSRecord(name: "mx.test", ttl: 300, data: .mx(preference: 1, exchange: "t.test")),
            DNSRecord(name: "t.test", ttl: 300, data: .a(IPAddress("192.0.2.1")!)),
            DNSRecord(name: "t.test", ttl: 300, data: .txt([Array("explained %{s} %{i} %{d}".utf8)])),
            DNSRecord(name: "1.2.0.192.in-addr.arpa", ttl: 300, data: .ptr("t.test")),
        ]
        let resolver = ZoneResolver(records: records)
        resolver.setFault(.timeout, for: "nx.test")
        let localPart = parts.count > 2 ? String(decoding: part(2), as: UTF8.self) : "u"
        let helo = parts.count > 3 ? String(decoding: part(3), as: UTF8.self) : "h.test"
        var plan = SPFCheck(ip: IPAddress("192.0.2.1")!, domain: "t.test", sender: localPart + "@t.test", helo: helo)
        guard case .done(let result) = resolver.advanceImmediately(&plan, from: plan.start()) else {
            fatalError("an SPF check waited on a zone resolver")
        }
        // The record, 10 DNS-querying terms of at most 1 + 10 questions each, the validated
        // %{p} name (1 + 10), and the explanation.
        let bound = 1 + 10 * 11 + 11 + 1
        guard resolver.questionCount <= bound else { fatalError("\(resolver.questionCount) questions for one check") }
        if result.result == .permerror || result.result == .temperror, result.reason == nil {
            fatalError("a \(result.result) without a reason")
        }
        if let explanation = result.explanation, !explanation.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7e }) {
            fatalError("an explanation that is not printable ASCII: \(Array(explanation.utf8))")
        }
    }
}
