import ArgumentParser
import Foundation
import Policy

/// Where `vrules reload` and `vrules status` find the server, and how long they wait for it.
struct ControlOptions: ParsableArguments {
    /// Where the shipped systemd unit has `vrules serve` take commands.
    static let defaultControlPath = "/run/vrules/control.sock"

    @Option(help: ArgumentHelp("The control socket of the server (its --control).", valueName: "path"))
    var control: String = Self.defaultControlPath

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 60

    func validate() throws {
        guard self.timeout.isFinite, self.timeout > 0, self.timeout <= 3600 else {
            throw ValidationError("--timeout: seconds from more than 0 to 3600, not \(self.timeout)")
        }
    }

    /// Sends `command` and returns the answer; no server to ask exits 2, no answer exits 1.
    func send(_ command: String, doing what: String) throws -> ControlProtocol.Answer {
        do {
            return try ControlClient.send(command, to: self.control, timeout: self.timeout)
        } catch let failure as ControlClient.Failure {
            FileHandle.standardError.write(Data("vrules: cannot \(what): \(failure)\n".utf8))
            throw ExitCode(failure.kind == .unreachable ? 2 : 1)
        }
    }
}
