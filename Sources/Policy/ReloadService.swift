import Logging
import Rules
import ServiceLifecycle
import UnixSignals

/// Reloads the rules (and the resolver configuration) on SIGHUP. A script that does not
/// load leaves the running one in place; requests in flight are never interrupted.
public struct ReloadService: Service {
    private let service: PolicyService
    private let loadEngines: @Sendable () async throws -> [RuleEngine]
    private let logger: Logger

    /// `loadEngines` makes as many engines as the service runs (one per core).
    public init(service: PolicyService, logger: Logger, loadEngines: @escaping @Sendable () async throws -> [RuleEngine]) {
        self.service = service
        self.loadEngines = loadEngines
        self.logger = logger
    }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await self.reload()
        }
    }

    /// Loads new engines and swaps them in; returns whether they loaded.
    @discardableResult
    public func reload() async -> Bool {
        do {
            let engines = try await self.loadEngines()
            await self.service.replaceEngines(engines)
            self.logger.notice("rules reloaded")
            return true
        } catch {
            self.logger.error("reload failed, keeping the running rules", metadata: ["error": "\(error)"])
            return false
        }
    }
}
