import Testing

import DNS

/// Records built at random from SPF's own pieces and from bytes no record should hold:
/// every check ends, on the immediate path, within the query bound the limits imply, and
/// every error result says why.
@Suite("SPF fuzzing")
struct SPFFuzzTests {
    /// A tiny linear congruential generator: repeatable without depending on the library's.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state = self.state &* 6364136223846793005 &+ 1442695040888963407
            return self.state
        }
    }

    /// Well-formed terms, most of the time; they reach every mechanism and limit.
    static let terms = [
        "all", "-all", "~all", "?all", "a", "a/24", "a//64", "a:t.test/0", "mx", "mx:mx.test", "mx//0",
        "ptr", "ptr:test", "exists:%{ir}.t.test", "exists:%{p}.t.test", "exists:t.test", "include:r.test",
        "include:loop.test", "include:nx.test", "-ip4:192.0.2.0/24", "ip4:198.51.100.1", "ip6:2001:db8::/32",
        "redirect=r.test", "redirect=%{d}", "exp=t.test", "exp=%{l}.t.test", "moo=%{s}", "a:%{d2r}.test",
        "exists:%{l}.%{d}", "mx:%{o}", "a:nx.test", "exists:nx%{i}.test",
    ]
    /// Pieces that break a term, put into one now and then.
    static let garbage = [
        "/33", "//129", "/", ":", "%", "%{", "}", "%{d0}", "%{c}", "%{x}", "..", "\u{0}", "\r\n", "é",
        "=", "v=spf1", "%{d9999}", "%-", "%_", "192.0.2.1", "/024",
    ]

    static func randomRecord(_ generator: inout Generator) -> String {
        var terms = ["v=spf1"]
        for _ in 0..<Int.random(in: 0...12, using: &generator) {
            var term = Self.terms.randomElement(using: &generator)!
            if Int.random(in: 0..<40, using: &generator) == 0 {
                let garbage = Self.garbage.randomElement(using: &generator)!
                let offset = Int.random(in: 0...term.count, using: &generator)
                term.insert(contentsOf: garbage, at: term.index(term.startIndex, offsetBy: offset))
            }
            terms.append(term)
        }
        return terms.joined(separator: Int.random(in: 0..<20, using: &generator) == 0 ? "  " : " ")
    }

    @Test("20,000 random records: each check ends within the query bound, errors with reasons")
    func randomRecords() throws {
        var generator = Generator(state: 0x5eed_5bf1)
        var counts: [SPFResult.Kind: Int] = [:]
        // 1 record + 10 terms of at most 1 + 10 questions + the %{p} lookup (1 + 10) + exp.
        let bound = 1 + 10 * 11 + 11 + 1
        for round in 0..<20_000 {
            let records: [DNSRecord] = [
                DNSRecord(name: "t.test", ttl: 300, data: .txt([Array(Self.randomRecord(&generator).utf8)])),
                DNSRecord(name: "r.test", ttl: 300, data: .txt([Array(Self.randomRecord(&generator).utf8)])),
                DNSRecord(name: "loop.test", ttl: 300, data: .txt([Array("v=spf1 include:loop.test mx:mx.test a ptr -all".utf8)])),
                DNSRecord(name: "mx.test", ttl: 300, data: .mx(preference: 1, exchange: "t.test")),
                DNSRecord(name: "t.test", ttl: 300, data: .a(IPAddress("192.0.2.1")!)),
                DNSRecord(name: "1.2.0.192.in-addr.arpa", ttl: 300, data: .ptr("t.test")),
            ]
            let resolver = ZoneResolver(records: records)
            if round.isMultiple(of: 2) { resolver.setFault(.timeout, for: "nx.test") }
            let ip = round.isMultiple(of: 3) ? IPAddress("2001:db8::1")! : IPAddress("192.0.2.1")!
            var plan = SPFCheck(ip: ip, domain: "t.test", sender: "u\u{0}@t.test", helo: "h.test")
            guard case .done(let result) = resolver.advanceImmediately(&plan, from: plan.start()) else {
                Issue.record("round \(round): the check waited on a zone resolver")
                return
            }
            counts[result.result, default: 0] += 1
            #expect(resolver.questionCount <= bound, "round \(round): \(resolver.questionCount) questions")
            if result.result == .permerror || result.result == .temperror {
                #expect(result.reason != nil, "round \(round)")
            }
            if let explanation = result.explanation {
                #expect(explanation.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7e })
            }
        }
        print("SPF fuzz: 20000 records, results \(counts.sorted { $0.key.rawValue < $1.key.rawValue })")
        // The generator must reach more than syntax errors.
        #expect((counts[.pass] ?? 0) > 100)
        #expect((counts[.fail] ?? 0) > 100)
        #expect((counts[.temperror] ?? 0) > 100)
    }
}
