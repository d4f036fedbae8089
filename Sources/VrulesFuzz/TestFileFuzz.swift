import Foundation
import RuleTesting
import Rules

/// The `test-file` target: a rule test file as an operator writes it, loaded by `vrules
/// test`'s loader and, when it loads, run against the rules it names (the shipped default
/// policy when it names none) under tight limits. The file is written beside a link to the
/// example zone, so that `zone_file = "example.zone"` finds it.
enum TestFileFuzz {
    /// Tight enough that a file's DNS delays and its rules' loops end well inside libFuzzer's
    /// timeout.
    static let limits = RuleLimits(instructionsPerStage: 200_000, memoryBytes: 16 << 20, stageTimeout: 0.2,
                                   runSecondsPerStage: 0.1, loadInstructions: 500_000, loadTimeout: 0.5,
                                   logLinesPerStage: 10, dnsCallsPerStage: 20)

    private static let directory: String = {
        let directory = FuzzTarget.scriptDirectory
        let zone = FileManager.default.currentDirectoryPath + "/examples/example.zone"
        try? FileManager.default.createSymbolicLink(atPath: directory + "/example.zone", withDestinationPath: zone)
        return directory
    }()

    static func run(_ input: [UInt8]) {
        let path = Self.directory + "/fuzz_test.lua"
        guard FileManager.default.createFile(atPath: path, contents: Data(input)) else { fatalError("cannot write \(path)") }
        let file: RuleTestFile
        do {
            file = try RuleTestFileLoader(defaultRulesPath: "rules/main.lua").load(path: path)
        } catch {
            guard !error.message.isEmpty else { fatalError("a test file refused without a reason") }
            return
        }
        guard !file.cases.isEmpty else { fatalError("a test file loaded with no test") }
        let results = FuzzTarget.wait { await RuleTestRunner(limits: Self.limits).run(file) }
        guard results.count == file.cases.count else {
            fatalError("\(file.cases.count) tests, \(results.count) results")
        }
        for result in results where result.failures.contains(where: \.isEmpty) {
            fatalError("\(result.name): a failure without a reason")
        }
    }
}
