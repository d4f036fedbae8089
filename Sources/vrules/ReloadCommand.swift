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

    /// Where the shipped systemd unit has `vrules serve` take reloads.
    static let defaultControlPath = "/run/vrules/control.sock"

    @Option(help: ArgumentHelp("The control socket of the server (its --control).", valueName: "path"))
    var control: String = Self.defaultControlPath

    @Option(help: "Seconds to wait for the outcome.")
    var timeout: Double = 60

    func validate() throws {
        guard self.timeout.isFinite, self.timeout > 0, self.timeout <= 3600 else {
            throw ValidationError("--timeout: seconds from more than 0 to 3600, not \(self.timeout)")
        }
    }

    func run() throws {
        let answer: ControlProtocol.Answer
        do {
            answer = try ControlClient.send(ControlProtocol.reloadCommand, to: self.control, timeout: self.timeout)
        } catch let failure as ControlClient.Failure {
            FileHandle.standardError.write(Data("vrules: cannot reload: \(failure)\n".utf8))
            throw ExitCode(failure.kind == .unreachable ? 2 : 1)
        }
        let text = (["vrules: " + answer.summary] + answer.details.map { "  " + $0 }).joined(separator: "\n") + "\n"
        guard answer.status == .ok else {
            FileHandle.standardError.write(Data(text.utf8))
            throw ExitCode(1)
        }
        print(text, terminator: "")
    }
}
