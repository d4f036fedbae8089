import Configuration
import Foundation
import Testing
import TOML

/// SplitMix64: a fixed seed gives the same files on every run, so a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutates configuration files the way typos and broken edits do: a byte changed, added or
/// dropped, a span duplicated, a line moved or borrowed from another file, a cut-off end.
struct ConfigurationMutator {
    var generator: SeededGenerator
    let seeds: [[UInt8]]
    static let alphabet: [UInt8] = Array("[]{}.,=\"'#\n\r\t \\_-+:0123456789eExyz".utf8) + [0x00, 0x7F, 0xC3, 0xA9, 0xE2, 0xFF]

    mutating func index(_ count: Int) -> Int { count == 0 ? 0 : Int.random(in: 0..<count, using: &self.generator) }

    mutating func lines(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    }

    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        for _ in 0..<Int.random(in: 1...4, using: &self.generator) {
            switch Int.random(in: 0..<8, using: &self.generator) {
            case 0 where !bytes.isEmpty:
                bytes[self.index(bytes.count)] = Self.alphabet.randomElement(using: &self.generator)!
            case 1:
                bytes.insert(Self.alphabet.randomElement(using: &self.generator)!, at: self.index(bytes.count + 1))
            case 2 where !bytes.isEmpty:
                let start = self.index(bytes.count)
                bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &self.generator)))
            case 3 where !bytes.isEmpty:
                let start = self.index(bytes.count)
                let span = bytes[start..<min(bytes.count, start + Int.random(in: 1...32, using: &self.generator))]
                bytes.insert(contentsOf: span, at: self.index(bytes.count + 1))
            case 4:
                let donor = self.lines(of: self.seeds[self.index(self.seeds.count)])
                var lines = self.lines(of: bytes)
                lines.insert(donor[self.index(donor.count)], at: self.index(lines.count + 1))
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            case 5:
                var lines = self.lines(of: bytes)
                lines.swapAt(self.index(lines.count), self.index(lines.count))
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            case 6 where !bytes.isEmpty:
                bytes.removeSubrange(self.index(bytes.count)...)
            default:
                // Repeat a header's opening bracket or dot: the shapes that broke toml++.
                let position = self.index(bytes.count + 1)
                bytes.insert(contentsOf: Array((Bool.random(using: &self.generator) ? "[." : "..").utf8), at: position)
            }
        }
        return bytes
    }
}

@Suite("Configuration fuzzing")
struct FuzzTests {
    /// The example and the configurations the tests use: every table, key and value form.
    static var seeds: [[UInt8]] {
        let example = (try? String(contentsOfFile: "\(packageRoot)/examples/vrules.toml", encoding: .utf8)) ?? ""
        return [example, """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:5300", "[::1]:5301", "192.0.2.1"]

            [server.dns.options]
            timeout = "500ms"
            attempts = 4
            rotate = true
            validate = true
            ip_strategy = "Ipv6thenIpv4"
            cache_size = 500
            num_concurrent_reqs = 3
            preserve_intermediates = false
            """, """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:5300"]
            [server.dns.options]
            cache_size = 100

            [server.virtual."example.com".dns]
            type = "google"

            [server.virtual."Other.Example.".dns.options]
            timeout = "1s"
            """, """
            [server.dns]
            type = "gogle"

            [limits]
            instructons = 5
            memory = "64 MB"
            stage_timeout = "1 minute"

            [policy]
            listen = "127.0.0.1:10040"

            [polcy]
            """, """
            server.dns = { type = "cloudflare", options = { timeout = 3, ip_strategy = "Ipv4Only" } }
            policy.listen = ['127.0.0.1:10040', '''unix:/run/vrules/policy.sock''']
            limits = { instructions = 1_000_000, memory = 1048576, stage_timeout = "2m" }
            """,
        ].map { Array($0.utf8) }
    }

    @Test("100,000 mutated configuration files through the loader: each is a configuration or errors with positions, never a crash")
    func mutatedFiles() {
        let seeds = Self.seeds
        var mutator = ConfigurationMutator(generator: SeededGenerator(state: 0x7672_756C_6573), seeds: seeds)
        var accepted = 0
        var syntaxErrors = 0
        var otherErrors = 0
        var problems: [String] = []
        let clock = ContinuousClock()
        let start = clock.now
        for iteration in 0..<100_000 {
            let bytes = mutator.mutate(seeds[iteration % seeds.count])
            let lines = bytes.filter { $0 == UInt8(ascii: "\n") }.count + 1
            let result = VrulesConfiguration.check(bytes, file: "fuzz.toml", resolvConfPath: "/nonexistent/resolv.conf")
            if result.errors.isEmpty {
                if result.configuration == nil { problems.append("#\(iteration): no configuration and no error") }
                accepted += 1
                continue
            }
            if result.configuration != nil { problems.append("#\(iteration): a configuration despite errors") }
            for error in result.errors {
                let inside = error.file == "fuzz.toml" && (1...lines).contains(error.position.line) && error.position.column >= 1
                if !inside || error.description.isEmpty { problems.append("#\(iteration): \(error)") }
            }
            if result.errors.contains(where: { $0.kind == .syntax }) { syntaxErrors += 1 } else { otherErrors += 1 }
            if problems.count > 20 { break }
        }
        let elapsed = clock.now - start
        print("configuration fuzz: 100000 files, \(accepted) accepted, \(syntaxErrors) TOML syntax errors, \(otherErrors) validation errors, \(elapsed)")
        #expect(problems == [])
        // Both layers are exercised: the TOML parser and the validation after it.
        #expect(accepted > 1_000 && syntaxErrors > 10_000 && otherErrors > 10_000)
    }
}
