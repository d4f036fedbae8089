#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ServiceLifecycle

/// Tells the service manager the process is alive (`WATCHDOG=1`), at half the interval the
/// manager asked for (`$WATCHDOG_USEC`, from the unit's `WatchdogSec=`), and only while
/// every event loop takes work: each ping first waits for an empty task on each loop. A
/// loop stuck in one job stops the pings, and the manager kills and restarts the process
/// once `WatchdogSec=` passes (with `Restart=on-failure`), where a process that merely
/// exists would be kept running while it answers nothing.
public struct Watchdog: Service {
    /// Why `$WATCHDOG_USEC` cannot be used.
    public struct IntervalError: Error, Equatable, CustomStringConvertible {
        public var value: String
        public var description: String { "WATCHDOG_USEC='\(self.value)': not a positive number of microseconds" }
        public init(value: String) { self.value = value }
    }

    private let manager: ServiceManager
    private let loops: [any EventLoop]
    public let interval: Duration

    /// Pings `manager` every `interval` once every loop of `loops` has run a task.
    public init(manager: ServiceManager, interval: Duration, loops: [any EventLoop]) {
        self.manager = manager
        self.interval = interval
        self.loops = loops
    }

    /// How often to ping: half of `$WATCHDOG_USEC`; nil when the manager asked for no
    /// watchdog, or asked another process (`$WATCHDOG_PID` names the one it watches).
    public static func interval(_ environment: [String: String], processID: Int32 = getpid()) throws(IntervalError) -> Duration? {
        guard let value = environment["WATCHDOG_USEC"], !value.isEmpty else { return nil }
        if let watched = environment["WATCHDOG_PID"], !watched.isEmpty, watched != "\(processID)" { return nil }
        guard let microseconds = UInt64(value), microseconds > 0 else { throw IntervalError(value: value) }
        return .microseconds(Int64(clamping: microseconds / 2))
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for loop in self.loops {
                    try await loop.submit {}.get()
                }
                self.manager.notify([.watchdog])
                try await Task.sleep(for: self.interval)
            }
        }
    }
}
