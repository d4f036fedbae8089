#if canImport(Glibc)
import Glibc
#endif

/// The listening sockets a service manager opened for this process and passed on (systemd's
/// socket activation, `sd_listen_fds(3)`): descriptors 3, 4, ... as `$LISTEN_FDS` counts
/// them, for the process `$LISTEN_PID` names. The manager keeps its own copy of each, so
/// clients that connect while the service restarts wait in the socket's backlog instead of
/// being refused.
public enum InheritedSockets {
    /// The first descriptor passed (`SD_LISTEN_FDS_START`).
    public static let first: Int32 = 3
    /// More than this many is taken for a mistake, not a configuration.
    public static let maximum = 64

    /// Why the passed descriptors cannot be served.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { self.reason }
        public init(_ reason: String) { self.reason = reason }
    }

    /// The listening stream sockets passed to this process; empty when none were (no
    /// `$LISTEN_FDS`, or they were meant for another process: `$LISTEN_PID` differs). Each
    /// is made close-on-exec.
    public static func fromEnvironment(_ environment: [String: String], processID: Int32 = getpid()) throws(Failure) -> [Int32] {
        guard let count = environment["LISTEN_FDS"], !count.isEmpty else { return [] }
        guard let pid = environment["LISTEN_PID"], pid == "\(processID)" else { return [] }
        guard let number = Int(count), number >= 1, number <= Self.maximum else {
            throw Failure("LISTEN_FDS='\(count)': not a number of descriptors from 1 to \(Self.maximum)")
        }
        let descriptors = (0..<Int32(number)).map { Self.first + $0 }
        for descriptor in descriptors {
            if let problem = Self.problem(with: descriptor) {
                throw Failure("descriptor \(descriptor) of LISTEN_FDS=\(number) \(problem)")
            }
            _ = fcntl(descriptor, F_SETFD, fcntl(descriptor, F_GETFD) | FD_CLOEXEC)
        }
        return descriptors
    }

    /// What makes `descriptor` unusable as a listener, or nil.
    static func problem(with descriptor: Int32) -> String? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return "is not open" }
        guard status.st_mode & S_IFMT == S_IFSOCK else { return "is not a socket" }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &value, &length) == 0,
              value == Int32(SOCK_STREAM.rawValue) else { return "is not a stream socket" }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == 0, value == 1 else {
            return "is not listening"
        }
        return nil
    }
}
