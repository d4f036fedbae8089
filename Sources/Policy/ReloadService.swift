import Logging
import Rules
import ServiceLifecycle
import UnixSignals

/// Reloads the rules (and the resolver configuration) on SIGHUP. A script that does not
/// load leaves the running one in place; requests in flight are never interrupted.
public struct ReloadService: Service {
    private let service: PolicyService
    private let loadEngine: @Sendable () async throws -> RuleEngine
    private let logger: Logger

    public init(service: PolicyService, logger: Logger, loadEngine: @escaping @Sendable () async throws -> RuleEngine) {
        self.service = service
        self.loadEngine = loadEngine
        self.logger = logger
    }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await self.reload()
        }
    }

    /// Loads a new engine and swaps it in; returns whether it loaded.
    @discardableResult
    public func reload() async -> Bool {
        do {
            let engine = try await self.loadEngine()
            await self.service.replaceEngine(engine)
            self.logger.notice("rules reloaded")
            return true
        } catch {
            self.logger.error("reload failed, keeping the running rules", metadata: ["error": "\(error)"])
            return false
        }
    }
}
