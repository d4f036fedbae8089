import Foundation
import NIOConcurrencyHelpers
import NIOCore
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
            lines += ControlProtocol.lines(failed.errors).filter { !$0.isEmpty }.map { "  " + $0 }
        }
        lines.append("connections \(server.openConnectionCount) open, transactions \(transactions) held")
        return lines
    }

    private static func time(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
