import ArgumentParser
import Foundation

@main
struct Vrules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vrules",
        abstract: "A mail-policy rule engine: Lua rules, DNS checks, verdicts per SMTP stage.",
        subcommands: [RunCommand.self, TestCommand.self, ServeCommand.self, AnswerCommand.self, ReloadCommand.self, StatusCommand.self, CheckCommand.self, APICommand.self, DNSCommand.self]
    )

    /// Usage errors exit with 2 (not ArgumentParser's 64), as documented.
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = Self.exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((Self.fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            Self.exit(withError: error)
        }
    }
}

/// A failure the user can act on: printed as is, exit status 2.
struct UsageFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension UsageFailure {
    static func exit(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data(("vrules: " + message + "\n").utf8))
        return ExitCode(2)
    }
}
