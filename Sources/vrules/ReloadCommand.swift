import ArgumentParser
import Foundation
import Policy

/// `vrules reload`: asks a running `vrules serve` to load its rules and configuration again,
/// and waits for the outcome, so a reload of broken rules fails where it was asked for (the
/// unit's `ExecReload`, hence `systemctl reload vrules`), not only in the server's log.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload a running vrules serve's rules and configuration, and say whether they loaded.",
        discussion: """
            Talks to the control socket vrules serve was started with (--control). Exit status: 0 when \
            the new rules and configuration are in use; 1 when they did not load (the running ones stay; \
            the errors are printed), or the server is stopping, or it gave no answer in time; 2 on a \
            usage error or when there is no server to ask.
            """
    )

    @OptionGroup var server: ControlOptions

    func run() throws {
        let answer = try self.server.send(ControlProtocol.reloadCommand, doing: "reload")
        let text = (["vrules: " + answer.summary] + answer.details.map { "  " + $0 }).joined(separator: "\n") + "\n"
        guard answer.status == .ok else {
            FileHandle.standardError.write(Data(text.utf8))
            throw ExitCode(1)
        }
        print(text, terminator: "")
    }
}
