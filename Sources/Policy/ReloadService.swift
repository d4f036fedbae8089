import Foundation
import Logging
import Metrics
import Rules
import ServiceLifecycle
import UnixSignals

/// Reloads the rules (and the resolver configuration) on SIGHUP, when a shard finds its
/// Lua state full of the rules' own data (`PolicyService.restartRequests`), and when `vrules
/// reload` asks on the control socket (`ReloadRequests.reload`, which waits for the outcome).
/// A script that does not load leaves the running one in place; requests in flight are never
/// interrupted. One reload runs at a time; requests that come meanwhile fold into one more.
public struct ReloadService: Service {
    public enum Reason: String, Sendable {
        case signal = "SIGHUP"
        case memory = "rules memory full"
        case control = "vrules reload"

        /// The `reason` label of `vrules_policy_reloads_total`.
        var metricLabel: String {
            switch self {
            case .signal: "signal"
            case .memory: "memory"
            case .control: "control"
            }
        }
    }

    /// What a load of the rules made: the engines, and what the operator should know of the
    /// files that still loaded (a setting that applies only at the next start).
    public struct Loaded: Sendable {
        public var engines: [RuleEngine]
        public var warnings: [String]
        /// The `[policy]` settings as the files now say (nil: leave them as they are).
        public var settings: PolicyService.ReloadedSettings?

        public init(engines: [RuleEngine], warnings: [String] = [], settings: PolicyService.ReloadedSettings? = nil) {
            self.engines = engines
            self.warnings = warnings
            self.settings = settings
        }
    }

    /// What a reload tells the owner (the service manager's notifications).
    public enum Event: Sendable {
        case began(Reason)
        case loaded(Reason)
        /// The new rules or configuration did not load; the running ones stay. The errors.
        case failed(Reason, String)
    }

    private let service: PolicyService
    private let requests: ReloadRequests
    private let events: @Sendable (Event) -> Void
    private let loadEngines: @Sendable () async throws -> Loaded
    private let logger: Logger

    /// `loadEngines` makes as many engines as the service runs (one per core); `requests`
    /// takes reloads asked for besides SIGHUP (the control socket's).
    public init(service: PolicyService, requests: ReloadRequests = ReloadRequests(), logger: Logger,
                events: @escaping @Sendable (Event) -> Void = { _ in },
                loadEngines: @escaping @Sendable () async throws -> Loaded) {
        self.service = service
        self.requests = requests
        self.events = events
        self.loadEngines = loadEngines
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let requests = self.requests
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals { requests.ask(.signal) }
            }
            group.addTask { [service] in
                for await _ in service.restartRequests { requests.ask(.memory) }
            }
            for await reason in requests.asked.cancelOnGracefulShutdown() {
                // A request taken as the shutdown began: a stopping server loads nothing.
                if Task.isShuttingDownGracefully { break }
                let waiting = requests.beginReload()
                let outcome = await self.reload(reason)
                for continuation in waiting { continuation.resume(returning: outcome) }
            }
            requests.stop()
            group.cancelAll()
        }
    }

    /// Whether the last reload loaded (1) or not (0), and when one last did: what an alert on
    /// a failed reload reads (the names Prometheus' own `..._config_last_reload_...` use).
    private static let lastReloadSuccessful = Gauge(label: "vrules_policy_last_reload_successful")
    private static let lastReloadSuccess = Gauge(label: "vrules_policy_last_reload_success_timestamp_seconds")

    /// The start's load counts as a successful one.
    public static func recordStart() {
        Self.lastReloadSuccessful.record(1)
        Self.lastReloadSuccess.record(Date().timeIntervalSince1970)
    }

    /// Loads new engines and swaps them in.
    @discardableResult
    public func reload(_ reason: Reason = .signal) async -> ReloadRequests.Outcome {
        self.events(.began(reason))
        do {
            let loaded = try await self.loadEngines()
            await self.service.replaceEngines(loaded.engines)
            if let settings = loaded.settings { await self.service.apply(settings) }
            Counter(label: "vrules_policy_reloads_total", dimensions: [("reason", reason.metricLabel)]).increment()
            Self.lastReloadSuccessful.record(1)
            Self.lastReloadSuccess.record(Date().timeIntervalSince1970)
            self.logger.notice("rules reloaded", metadata: ["reason": "\(reason.rawValue)"])
            self.events(.loaded(reason))
            return .loaded(warnings: loaded.warnings)
        } catch {
            self.logger.error("reload failed, keeping the running rules", metadata: [
                "reason": "\(reason.rawValue)", "error": "\(error)",
            ])
            Counter(label: "vrules_policy_reload_failures_total", dimensions: [("reason", reason.metricLabel)]).increment()
            Self.lastReloadSuccessful.record(0)
            self.events(.failed(reason, "\(error)"))
            return .failed("\(error)")
        }
    }
}
