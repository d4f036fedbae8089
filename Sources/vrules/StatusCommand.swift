import ArgumentParser
import Foundation
import Policy

/// `vrules status`: what a running `vrules serve` is doing, asked on its control socket.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what a running vrules serve serves: where, since when, which rules, how the last reload went.",
        discussion: """
            Talks to the control socket vrules serve was started with (--control). Exit status: 0 with \
            the status printed; 1 when the server is stopping or gave no answer in time; 2 on a usage \
            error or when there is no server to ask.
            """
    )

    @OptionGroup var server: ControlOptions

    @Flag(help: ArgumentHelp("Print the status as one line of JSON (keys: pid, serving_since, listening, rule_engines, rules, dry_run, connections, transactions, and last_reload_failure while the last reload failed).", valueName: "json"))
    var json = false

    func run() throws {
        let command = self.json ? ControlProtocol.statusJSONCommand : ControlProtocol.statusCommand
        let answer = try self.server.send(command, doing: "ask for the status")
        guard answer.status == .ok else {
            FileHandle.standardError.write(Data((["vrules: " + answer.summary] + answer.details.map { "  " + $0 }).map { $0 + "\n" }.joined().utf8))
            throw ExitCode(1)
        }
        print(answer.details.joined(separator: "\n"))
    }
}
