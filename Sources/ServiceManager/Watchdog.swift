#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Tells the service manager the process is alive (`WATCHDOG=1`), at half the interval the
/// manager asked for (`$WATCHDOG_USEC`, from the unit's `WatchdogSec=`), and only while
/// every event loop takes work and every other probe returns: each ping first waits for an
/// empty task on each loop, then for each probe (the DNS reactor's thread). A loop or a
/// thread stuck in one job stops the pings, and the manager kills and restarts the process
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
    private let probes: [@Sendable () async -> Void]
    public let interval: Duration

    /// Pings `manager` every `interval` once every loop of `loops` has run a task and every
    /// probe of `probes` has returned.
    public init(manager: ServiceManager, interval: Duration, loops: [any EventLoop], probes: [@Sendable () async -> Void] = []) {
        self.manager = manager
        self.interval = interval
        self.loops = loops
        self.probes = probes
    }

    /// How often to ping: half of `$WATCHDOG_USEC`; nil when the manager asked for no
    /// watchdog, or asked another process (`$WATCHDOG_PID` names the one it watches).
    public static func interval(_ environment: [String: String], processID: Int32 = getpid()) throws(IntervalError) -> Duration? {
        guard let value = environment["WATCHDOG_USEC"], !value.isEmpty else { return nil }
        if let watched = environment["WATCHDOG_PID"], !watched.isEmpty, watched != "\(processID)" { return nil }
        guard let microseconds = UInt64(value), microseconds > 0 else { throw IntervalError(value: value) }
        return .microseconds(Int64(clamping: microseconds / 2))
    }

    /// Waits for `probe` to return, or for this task's cancellation (a graceful shutdown),
    /// whichever comes first: a stuck probe must stop the pings, not hold the shutdown.
    static func wait(for probe: @escaping @Sendable () async -> Void) async throws {
        enum State {
            case started
            case waiting(CheckedContinuation<Void, any Error>)
            case ended(Result<Void, any Error>)
        }
        let state = NIOLockedValueBox(State.started)
        // The first outcome wins; the waiter is resumed once, whenever it started waiting.
        let end = { @Sendable (outcome: Result<Void, any Error>) in
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
                switch state {
                case .started:
                    state = .ended(outcome)
                    return nil
                case .waiting(let continuation):
                    state = .ended(outcome)
                    return continuation
                case .ended:
                    return nil
                }
            }
            waiter?.resume(with: outcome)
        }
        let running = Task { await probe(); end(.success(())) }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ended = state.withLockedValue { state -> Result<Void, any Error>? in
                    if case .ended(let outcome) = state { return outcome }
                    state = .waiting(continuation)
                    return nil
                }
                if let ended { continuation.resume(with: ended) }
            }
        } onCancel: {
            running.cancel()
            end(.failure(CancellationError()))
        }
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for loop in self.loops {
                    try await loop.submit {}.get()
                }
                for probe in self.probes { try await Self.wait(for: probe) }
                self.manager.notify([.watchdog])
                try await Task.sleep(for: self.interval)
            }
        }
    }
}
