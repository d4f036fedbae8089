import Foundation
import NIOConcurrencyHelpers
import NIOCore
import OneLineText
import Policy

/// What `vrules status` shows of this `vrules serve`: where and since when it serves, which
/// rules it runs and when they were loaded, whether the last reload failed and why, and how
/// many connections and transactions it holds now.
final class ServerStatus: Sendable {
    private struct State {
        var listening: [SocketAddress] = []
        var loaded: (at: Date, reason: String)
        var failed: (at: Date, reason: String, errors: String)?
    }

    private let started = Date()
    private let rules: String
    private let engines: Int
    private let dryRun: DryRunState
    private let state: NIOLockedValueBox<State>

    init(rules: String, engines: Int, dryRun: DryRunState = DryRunState(false)) {
        self.dryRun = dryRun
        self.rules = URL(fileURLWithPath: rules).standardizedFileURL.path
        self.engines = engines
        self.state = NIOLockedValueBox(State(loaded: (self.started, "start")))
    }

    func server(_ event: PolicyServer.Event) {
        if case .listening(let addresses) = event {
            self.state.withLockedValue { $0.listening = addresses }
        }
    }

    func reload(_ event: ReloadService.Event) {
        self.state.withLockedValue { state in
            switch event {
            case .began: break
            case .loaded(let reason):
                state.loaded = (Date(), reason.rawValue)
                state.failed = nil
            case .failed(let reason, let errors):
                state.failed = (Date(), reason.rawValue, errors)
            }
        }
    }

    /// What `vrules status` prints: lines, one fact each (the errors of a failed reload one per
    /// line, indented), or one line of JSON with the same facts.
    func status(_ format: ControlProtocol.StatusFormat, server: PolicyServer) async -> [String] {
        switch format {
        case .text: return await self.lines(server: server)
        case .json: return [await self.json(server: server)]
        }
    }

    /// The lines, one fact each; the errors of a failed reload one per line, indented.
    func lines(server: PolicyServer) async -> [String] {
        let state = self.state.withLockedValue { $0 }
        let transactions = await server.service.transactionCount
        let addresses = state.listening.map(PolicyServer.text).joined(separator: ", ")
        var lines = [
            "pid \(ProcessInfo.processInfo.processIdentifier), serving since \(Self.time(self.started)) on \(addresses) "
                + "with \(self.engines) rule engines",
            "rules \(self.rules), loaded \(Self.time(state.loaded.at)) (\(state.loaded.reason))",
        ]
        if self.dryRun.isOn { lines.append("dry run: refusals are logged and answered DUNNO; no mail is refused") }
        if let failed = state.failed {
            lines.append("last reload failed at \(Self.time(failed.at)) (\(failed.reason)), the running rules stay:")
            lines += Self.errorLines(failed.errors).map { "  " + $0 }
        }
        lines.append("connections \(server.openConnectionCount) open, transactions \(transactions) held")
        return lines
    }

    /// The same facts as one line of JSON, keys sorted; `last_reload_failure` only while the
    /// last reload failed.
    func json(server: PolicyServer) async -> String {
        let state = self.state.withLockedValue { $0 }
        let transactions = await server.service.transactionCount
        var object: [String: Any] = [
            "pid": Int(ProcessInfo.processInfo.processIdentifier),
            "serving_since": Self.time(self.started),
            "listening": state.listening.map(PolicyServer.text),
            "rule_engines": self.engines,
            "rules": ["path": self.rules, "loaded_at": Self.time(state.loaded.at), "loaded_by": state.loaded.reason],
            "dry_run": self.dryRun.isOn,
            "connections": server.openConnectionCount,
            "transactions": transactions,
        ]
        if let failed = state.failed {
            object["last_reload_failure"] = ["at": Self.time(failed.at), "reason": failed.reason, "errors": Self.errorLines(failed.errors)]
        }
        // Only strings, numbers, booleans, arrays and dictionaries: it cannot fail.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        // What an error quotes from a script may hold characters the answer must not carry raw.
        return OneLine.jsonEscaped(String(decoding: data, as: UTF8.self))
    }

    /// A failed reload's errors, one a line, as many as an answer carries.
    private static func errorLines(_ errors: String) -> [String] {
        Array(ControlProtocol.lines(errors).filter { !$0.isEmpty }.prefix(ControlProtocol.maximumDetailLines))
    }

    private static func time(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
