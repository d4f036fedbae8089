import ArgumentParser
import DNSResolver
import Foundation
import OneLineText
import OperatorFiles
import RuleTesting
import Rules

/// `vrules test`: run rule tests (`*_test.lua`) and print one line per test.
struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run rule tests: sessions with DNS fixtures and the expected verdict per stage."
    )

    @Argument(help: "Test files or directories searched for *_test.lua (default: tests/ beside the rules).")
    var paths: [String] = []

    @Option(help: "The rule script for test files that name none.")
    var rules: String = "rules/main.lua"

    @Option(help: "Run only tests whose 'file: name' contains this text.")
    var filter: String?

    @Option(help: "Write a JUnit XML report to this file.")
    var junit: String?

    @Option(help: "The configuration file: its [limits] and [dnsbl] apply as in serve, and its resolver answers tests with dns = \"network\".")
    var config: String = "vrules.toml"

    @Flag(help: "After the tests, list each rule and action of the rules tested: how often the tests ran it, what it decided, and which never ran or never decided.")
    var coverage = false

    @Flag(help: "As --coverage, and exit with status 1 when an entry never ran or a rule never decided.")
    var requireCoverage = false

    @OptionGroup var accept: AcceptActionOption

    func run() async throws {
        let rulesDirectory = (self.rules as NSString).deletingLastPathComponent
        let roots = self.paths.isEmpty ? [(rulesDirectory.isEmpty ? "." : rulesDirectory) + "/tests"] : self.paths
        var files: [String] = []
        for root in roots {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else {
                throw UsageFailure.exit("no such file or directory: \(root)")
            }
            if !isDirectory.boolValue {
                files.append(root)
                continue
            }
            let found = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
                .filter { $0.hasSuffix("_test.lua") }
                .sorted()
                .map { root.hasSuffix("/") ? root + $0 : root + "/" + $0 }
            files += found
        }
        guard !files.isEmpty else { throw UsageFailure.exit("no *_test.lua files under \(roots.joined(separator: ", "))") }

        let loader = RuleTestFileLoader(defaultRulesPath: self.rules)
        // The rules run under the configuration serve would give them, so that a test passes
        // or fails as the rules would in production: a broken or missing --config is refused
        // as every other command refuses it.
        let configuration: ConfigurationFile
        do {
            configuration = try ConfigurationFile.load(path: self.config, isDefault: self.config == "vrules.toml")
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        var limits = configuration.limits
        // A test's own stage deadline, unless the file sets one: a rule waiting on a delay
        // fault fails its test in 10 s rather than the production default.
        if configuration.configuration.limits.stageTimeout == nil { limits.stageTimeout = 10 }
        let dns = configuration.dns
        var runner = RuleTestRunner(
            limits: limits, dnsblPolicies: configuration.configuration.dnsbl, networkResolvers: { DNSResolverSet(configuration: dns) },
            maximumRecipients: configuration.configuration.policy.maximumRecipients ?? RecipientLimit.defaultMaximum)
        runner.acceptCarriesHeaders = self.accept.acceptCarriesHeaders
        if let action = configuration.unknownStateAction { runner.unknownStateAction = action }
        runner.zoneOptions = dns.root.options.zoneOptions
        var results: [RuleTestResult] = []
        var loadErrors: [RuleTestFileError] = []
        for path in files {
            let file: RuleTestFile
            do {
                file = try loader.load(path: path)
            } catch {
                loadErrors.append(error)
                print("FAIL - \(OneLine.escaped(path)): the test file does not load: \(OneLine.escaped(error.message))")
                continue
            }
            for result in await runner.run(file, filter: self.filter) {
                results.append(result)
                if result.passed {
                    print("ok - \(OneLine.escaped(result.fullName))")
                } else {
                    print("FAIL - \(OneLine.escaped(result.fullName))")
                    for failure in result.failures { print("    \(OneLine.escaped(failure))") }
                }
            }
        }
        let failed = results.filter { !$0.passed }.count + loadErrors.count
        print("\(results.count - results.filter { !$0.passed }.count) passed, \(failed) failed")
        var uncovered = 0
        if self.coverage || self.requireCoverage {
            var coverage = RuleCoverage()
            for result in results { coverage.add(result) }
            for line in coverage.lines { print(OneLine.escaped(line)) }
            uncovered = coverage.uncovered
        }
        if let junit {
            // The report may go to the same place as the lines above (`--junit /dev/stdout`).
            fflush(nil)
            do {
                try OutputFile.write(Array(JUnitReport.xml(results, loadErrors: loadErrors).utf8), toPath: junit)
            } catch {
                throw UsageFailure.exit("cannot write \(junit): \(error.reason)")
            }
        }
        if failed > 0 { throw ExitCode(1) }
        if self.requireCoverage && uncovered > 0 {
            print("--require-coverage: \(uncovered) entr\(uncovered == 1 ? "y" : "ies") never ran or never decided")
            throw ExitCode(1)
        }
    }
}
