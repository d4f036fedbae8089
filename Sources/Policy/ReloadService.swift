import Logging
import Metrics
import Rules
import ServiceLifecycle
import UnixSignals

/// Reloads the rules (and the resolver configuration) on SIGHUP, and when a shard finds its
/// Lua state full of the rules' own data (`PolicyService.restartRequests`). A script that
/// does not load leaves the running one in place; requests in flight are never interrupted.
/// One reload runs at a time; requests that come meanwhile fold into one more.
public struct ReloadService: Service {
    public enum Reason: String, Sendable {
        case signal = "SIGHUP"
        case memory = "rules memory full"
    }

    /// What a reload tells the owner (the service manager's notifications).
    public enum Event: Sendable {
        case began(Reason)
        case loaded(Reason)
        /// The new rules or configuration did not load; the running ones stay. The errors.
        case failed(Reason, String)
    }

    private let service: PolicyService
    private let events: @Sendable (Event) -> Void
    private let loadEngines: @Sendable () async throws -> [RuleEngine]
    private let logger: Logger

    /// `loadEngines` makes as many engines as the service runs (one per core).
    public init(service: PolicyService, logger: Logger, events: @escaping @Sendable (Event) -> Void = { _ in },
                loadEngines: @escaping @Sendable () async throws -> [RuleEngine]) {
        self.service = service
        self.events = events
        self.loadEngines = loadEngines
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let (reloads, requested) = AsyncStream.makeStream(of: Reason.self, bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals { requested.yield(.signal) }
            }
            group.addTask { [service] in
                for await _ in service.restartRequests { requested.yield(.memory) }
            }
            for await reason in reloads.cancelOnGracefulShutdown() {
                await self.reload(reason)
            }
            group.cancelAll()
        }
    }

    /// Loads new engines and swaps them in; returns whether they loaded.
    @discardableResult
    public func reload(_ reason: Reason = .signal) async -> Bool {
        self.events(.began(reason))
        do {
            let engines = try await self.loadEngines()
            await self.service.replaceEngines(engines)
            Counter(label: "vrules_policy_reloads_total", dimensions: [("reason", reason == .signal ? "signal" : "memory")])
                .increment()
            self.logger.notice("rules reloaded", metadata: ["reason": "\(reason.rawValue)"])
            self.events(.loaded(reason))
            return true
        } catch {
            self.logger.error("reload failed, keeping the running rules", metadata: [
                "reason": "\(reason.rawValue)", "error": "\(error)",
            ])
            self.events(.failed(reason, "\(error)"))
            return false
        }
    }
}
