import ArgumentParser
import Foundation
import Lint

/// `vrules check`: the linter for the configuration, rule scripts and test files.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the configuration, rule scripts (following require) and test files without running rules.",
        discussion: """
            Diagnostics are printed as path:line:col: error|warning: message [code], sorted. \
            Exit status: 0 when there is no error, 1 when there is one, 2 on a usage error.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "Rule scripts, test files (*_test.lua), .toml configs or directories (default: rules/main.lua and rules/tests/).")
    var paths: [String] = []

    @Option(help: "The configuration file (default: vrules.toml when it exists).")
    var config: String?

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    func run() async throws {
        let diagnostics: [Diagnostic]
        do {
            diagnostics = try Linter().run(LintRequest(paths: self.paths, configPath: self.config))
        } catch {
            throw UsageFailure.exit(error.description)
        }
        switch self.format {
        case .text: print(DiagnosticFormatter.text(diagnostics), terminator: "")
        case .json: print(DiagnosticFormatter.json(diagnostics))
        }
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode(1) }
    }
}
