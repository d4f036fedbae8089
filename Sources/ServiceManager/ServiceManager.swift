#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers

/// The service manager that started this process, told how the process is doing: systemd's
/// notification protocol (`sd_notify(3)`), spoken without libsystemd. A unit of
/// `Type=notify` is "started" only when the process says `READY=1`, so a unit ordered after
/// it (Postfix, with `Before=postfix.service`) starts once the policy socket accepts, not
/// when the binary was merely executed; `RELOADING=1` and `STOPPING=1` show a reload or a
/// shutdown in `systemctl status`, `STATUS=` says in words what happened last, and
/// `WATCHDOG=1` (see `Watchdog`) tells it the process is alive.
///
/// Each notification is one datagram to the socket `$NOTIFY_SOCKET` names. A process no
/// manager started has no such variable and every call does nothing. A notification that
/// cannot be sent is logged as a warning once, then at debug level: the manager's timeouts
/// (`TimeoutStartSec=`, `WatchdogSec=`) then decide, and the log says why.
public final class ServiceManager: Sendable {
    /// Where notifications go: a path, or a name in the abstract namespace (`@name`).
    public enum Address: Equatable, Sendable, CustomStringConvertible {
        case path(String)
        case abstract(String)

        public var description: String {
            switch self {
            case .path(let path): path
            case .abstract(let name): "@" + name
            }
        }
    }

    /// One line of the protocol (`KEY=value`).
    public enum Notification: Equatable, Sendable {
        /// Startup (or a reload) is complete: the service does what it is for.
        case ready
        /// A reload began, at `monotonicMicroseconds` of `CLOCK_MONOTONIC` (systemd 253's
        /// `Type=notify-reload` needs the time; earlier versions ignore it).
        case reloading(monotonicMicroseconds: UInt64)
        /// A graceful shutdown began.
        case stopping
        /// What the service is doing, for `systemctl status`: one line, cut at `statusLimit`.
        case status(String)
        /// The service is alive (for `WatchdogSec=`).
        case watchdog

        var line: String {
            switch self {
            case .ready: "READY=1"
            case .reloading(let microseconds): "RELOADING=1\nMONOTONIC_USEC=\(microseconds)"
            case .stopping: "STOPPING=1"
            case .status(let text): "STATUS=" + ServiceManager.oneLine(text)
            case .watchdog: "WATCHDOG=1"
            }
        }
    }

    /// Why `$NOTIFY_SOCKET` cannot be used.
    public struct AddressError: Error, Equatable, CustomStringConvertible {
        public var value: String
        public var reason: String
        public var description: String { "NOTIFY_SOCKET='\(self.value)': \(self.reason)" }
        public init(value: String, reason: String) {
            self.value = value
            self.reason = reason
        }
    }

    /// How long a status line may be: systemd reads a notification into a buffer of 4 KiB.
    static let statusLimit = 1024

    public let address: Address
    private let logger: Logger
    private let warned = NIOLockedValueBox(false)

    public init(address: Address, logger: Logger) {
        self.address = address
        self.logger = logger
    }

    /// The manager `$NOTIFY_SOCKET` names; nil when the variable is unset or empty (no
    /// manager waits for notifications).
    public static func fromEnvironment(_ environment: [String: String], logger: Logger) throws(AddressError) -> ServiceManager? {
        guard let value = environment["NOTIFY_SOCKET"], !value.isEmpty else { return nil }
        return ServiceManager(address: try Self.address(value), logger: logger)
    }

    /// `$NOTIFY_SOCKET`'s value as an address: an absolute path, or `@` and an abstract name;
    /// either must fit `sockaddr_un`'s 108 bytes.
    public static func address(_ value: String) throws(AddressError) -> Address {
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        if value.hasPrefix("@") {
            guard value.utf8.count <= capacity else {
                throw AddressError(value: value, reason: "an abstract name longer than \(capacity - 1) bytes")
            }
            return .abstract(String(value.dropFirst()))
        }
        guard value.hasPrefix("/") else {
            throw AddressError(value: value, reason: "neither an absolute path nor @ and an abstract name")
        }
        guard value.utf8.count < capacity, !value.utf8.contains(0) else {
            throw AddressError(value: value, reason: "a path longer than \(capacity - 1) bytes")
        }
        return .path(value)
    }

    /// Sends the notifications in one datagram; returns whether the manager got it.
    @discardableResult
    public func notify(_ notifications: [Notification]) -> Bool {
        let message = notifications.map(\.line).joined(separator: "\n") + "\n"
        do {
            try self.send(message)
            return true
        } catch {
            let first = self.warned.withLockedValue { warned in
                defer { warned = true }
                return !warned
            }
            let metadata: Logger.Metadata = ["socket": "\(self.address)", "error": "\(error)"]
            if first {
                self.logger.warning("cannot notify the service manager (NOTIFY_SOCKET); later failures are logged at debug level",
                                    metadata: metadata)
            } else {
                self.logger.debug("cannot notify the service manager (NOTIFY_SOCKET)", metadata: metadata)
            }
            return false
        }
    }

    /// `CLOCK_MONOTONIC` now, in microseconds, as `RELOADING=1` wants it.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Control characters (a newline would start a line of its own, read as another
    /// `KEY=value`) become spaces; the text is cut at `statusLimit` bytes, on a character.
    static func oneLine(_ text: String) -> String {
        var line = ""
        var bytes = 0
        for character in text {
            let kept: Character = character.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? " " : character
            bytes += kept.utf8.count
            if bytes > Self.statusLimit { break }
            line.append(kept)
        }
        return line
    }

    private struct SendError: Error, CustomStringConvertible {
        var call: String
        var code: Int32
        var description: String { "\(self.call): \(String(cString: strerror(self.code)))" }
    }

    private func send(_ message: String) throws(SendError) {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SendError(call: "socket", code: errno) }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name: [UInt8]
        switch self.address {
        case .path(let path): name = Array(path.utf8)
        case .abstract(let abstract): name = [0] + Array(abstract.utf8)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path.copyBytes(from: name.prefix(path.count))
        }
        // An abstract name is exactly its bytes (no terminator); a path is terminated.
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length = socklen_t(pathOffset + name.count + (name.first == 0 ? 0 : 1))
        let sent = Array(message.utf8).withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // Never waits: a manager that stops reading fills the socket's queue, and a
                    // blocking send would then hold the thread that reports (a reload's, the
                    // watchdog's) for good. The notification is lost instead, and logged.
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), $0, length)
                }
            }
        }
        guard sent >= 0 else { throw SendError(call: "sendto", code: errno) }
    }
}
