import Foundation
import Testing

import DNS
import VrulesTestSupport

/// Random SPF scenarios, each test's expected result given by pyspf (Debian's `python3-spf`,
/// the library behind `postfix-policyd-spf-python`): an independent implementation as the
/// oracle where the conformance suite says nothing. `scripts/spf-differential.py` writes the
/// scenarios in the suite's JSON shape, and they run here exactly as the suite does.
///
/// Where pyspf and RFC 7208 part, the scenarios are built around it or the other result is
/// allowed too; docs/spf.md ("Beside pyspf") lists each case with the RFC's words.
/// `SPF_DIFFERENTIAL_SEEDS=1-100` runs more seeds than the six the test suite runs.
@Suite("SPF beside pyspf on random scenarios")
struct SPFDifferentialTests {
    static let seeds: [String] = {
        let range = ProcessInfo.processInfo.environment["SPF_DIFFERENTIAL_SEEDS"] ?? "1-6"
        let bounds = range.split(separator: "-").compactMap { Int($0) }
        guard let first = bounds.first, let last = bounds.last, first <= last else { return ["1"] }
        return (first...last).map(String.init)
    }()
    static let scenariosPerSeed = 300

    @Test("every result matches pyspf's, except where RFC 7208 and pyspf part", arguments: seeds)
    func matchesPyspf(seed: String) throws {
        let suite = try Self.generate(seed: seed)
        var mismatches: [String] = []
        var compared = 0
        for scenario in suite.scenarios {
            let resolver = try scenario.makeResolver()
            for test in scenario.tests {
                compared += 1
                let outcome = test.run(on: resolver)
                guard !outcome.passed else { continue }
                let got = outcome.result.map { "\($0.result.rawValue) (\($0.reason ?? "-"))" } ?? "nothing"
                mismatches.append("""
                    \(test.name): \(outcome.detail); pyspf: \(test.oracleReason ?? "-"); ip \(test.host), \
                    mailfrom '\(test.mailfrom)', helo \(test.helo); vrules: \(got)
                      zone: \(Self.describe(scenario))
                    """)
            }
        }
        print("SPF beside pyspf, seed \(seed): \(compared) tests, \(compared - mismatches.count) agree; "
              + "\(suite.leftOut ?? 0) left out where pyspf refuses an include of the domain itself before evaluating")
        for mismatch in mismatches.prefix(20) { print("SPF differential: \(mismatch)") }
        #expect(compared == suite.testCount)
        #expect(compared > 2_000)
        #expect(mismatches.isEmpty, "\(mismatches.count) results differ from pyspf's (printed above)")
    }

    static func describe(_ scenario: SPFScenario) -> String {
        scenario.zonedata.sorted { $0.key < $1.key }.map { name, entries in
            "\(name): " + entries.map { "\($0.type) \($0.strings)" }.joined(separator: ", ")
        }.joined(separator: " | ")
    }

    static func generate(seed: String) throws -> SPFSuite {
        let script = CLI.packageRoot.appendingPathComponent("scripts/spf-differential.py")
        let target = FileManager.default.temporaryDirectory
            .appendingPathComponent("spf-differential-\(seed)-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: target) }
        // Debian's python3, where python3-spf is installed (not a python3 earlier in PATH).
        let output = try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/python3"),
                                          [script.path, seed, String(Self.scenariosPerSeed), target.path])
        guard output.status == 0 else {
            struct GeneratorFailed: Error, CustomStringConvertible { var description: String }
            throw GeneratorFailed(description: "spf-differential.py failed (python3-spf installed? scripts/test.sh installs it): \(output.stderr)")
        }
        return try SPFSuite.load(from: target)
    }
}
