import DNSResolver
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Policy
import ServiceManager

/// What `vrules serve` tells the service manager that started it (systemd's `Type=notify`,
/// `packaging/vrules.service.in`): ready once every listener is bound, reloading and ready
/// again around a reload, stopping at a graceful shutdown, and each time a status line that
/// `systemctl status vrules` shows (a reload that failed says so there, not only in the log).
struct ServiceManagerReports: Sendable {
    private let manager: ServiceManager?
    private let engines: Int
    private let dryRun: DryRunState
    private let serving = NIOLockedValueBox("")

    /// Reads `$NOTIFY_SOCKET`; a value it cannot use is logged and no notifications are sent.
    init(environment: [String: String], engines: Int, dryRun: DryRunState = DryRunState(false), logger: Logger) {
        do {
            self.manager = try ServiceManager.fromEnvironment(environment, logger: logger)
        } catch {
            logger.warning("the service manager will not be notified", metadata: ["error": "\(error)"])
            self.manager = nil
        }
        self.engines = engines
        self.dryRun = dryRun
    }

    /// The watchdog `$WATCHDOG_USEC` asks for, probing `loops`; nil when none is asked for
    /// (or there is no manager to ping).
    func watchdog(environment: [String: String], loops: [any EventLoop], logger: Logger) -> Watchdog? {
        guard let manager = self.manager else { return nil }
        do {
            guard let interval = try Watchdog.interval(environment) else { return nil }
            logger.info("pinging the service manager's watchdog", metadata: ["interval": "\(interval)"])
            return Watchdog(manager: manager, interval: interval, loops: loops, probes: [{ await UDPReactorProbe.run() }])
        } catch {
            logger.warning("the service manager's watchdog will not be pinged", metadata: ["error": "\(error)"])
            return nil
        }
    }

    func server(_ event: PolicyServer.Event) {
        guard let manager = self.manager else { return }
        switch event {
        case .listening(let addresses):
            let serving = "serving on \(addresses.map(PolicyServer.text).joined(separator: ", ")) with \(self.engines) rule engines"
            self.serving.withLockedValue { $0 = serving }
            manager.notify([.ready, .status(serving + self.dryRunNote)])
        case .stopping:
            manager.notify([.stopping, .status("stopping: answering what the open connections sent")])
        }
    }

    func reload(_ event: ReloadService.Event) {
        guard let manager = self.manager else { return }
        let serving = self.serving.withLockedValue { $0 } + self.dryRunNote
        switch event {
        case .began(let reason):
            manager.notify([.reloading(monotonicMicroseconds: ServiceManager.monotonicMicroseconds()),
                            .status("reloading the rules (\(reason.rawValue))")])
        case .loaded(let reason):
            manager.notify([.ready, .status("rules reloaded at \(Self.now()) (\(reason.rawValue)); \(serving)")])
        case .failed(let reason, let errors):
            manager.notify([.ready, .status("reload failed at \(Self.now()) (\(reason.rawValue)), the running rules stay: \(errors)")])
        }
    }

    /// Said after "serving on ..." while a dry run is on.
    private var dryRunNote: String { self.dryRun.isOn ? ", dry run: no mail is refused" : "" }

    private static func now() -> String {
        ISO8601DateFormatter().string(from: Date())
    }
}
