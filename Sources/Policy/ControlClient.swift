#if canImport(Glibc)
import Glibc
#endif
import ListenAddress
import OneLineText

/// The client end of the control socket (`vrules reload`): sends one command and reads the
/// answer until the server closes, within a deadline. Blocking calls, for a command-line tool.
public enum ControlClient {
    /// Why no answer was had: no server to ask, or none in time. Says what to check.
    public struct Failure: Error, CustomStringConvertible {
        public enum Kind: Sendable {
            /// There is no server at the path to ask (none, another file, no permission).
            case unreachable
            /// The server took the command but did not answer (in time, or at all).
            case noAnswer
        }

        public var kind: Kind
        public var description: String
    }

    /// The most of an answer read: far more than any answer the server writes.
    static let maximumAnswerBytes = 1 << 20

    public static func send(_ command: String, to path: String, timeout seconds: Double) throws -> ControlProtocol.Answer {
        let deadline = Self.now() + seconds
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(kind: .unreachable, description: "socket: \(Self.errorText())") }
        defer { close(descriptor) }
        try Self.connect(descriptor, to: path, timeout: seconds)
        let bytes = Array((command + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw Failure(kind: .noAnswer, description: "\(path): the server closed the connection before taking the command (\(Self.errorText()))")
            }
            sent += count
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let remaining = deadline - Self.now()
            guard remaining > 0 else {
                throw Failure(kind: .noAnswer, description: """
                    \(path): no answer within \(Self.seconds(seconds)); the reload may still finish: see the server's log
                    """)
            }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw Failure(kind: .noAnswer, description: "\(path): reading the answer: \(Self.errorText())")
            }
            if count == 0 { break }
            answer += chunk[..<count]
            guard answer.count <= Self.maximumAnswerBytes else {
                throw Failure(kind: .noAnswer, description: "\(path): the answer is over \(Self.maximumAnswerBytes) bytes; not a vrules control socket?")
            }
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard let decoded = ControlProtocol.Answer(decoding: text) else {
            let first = ControlProtocol.lines(text).first ?? ""
            throw Failure(kind: .noAnswer, description: answer.isEmpty
                ? "\(path): the server closed the connection without an answer"
                : "\(path): not an answer from vrules serve: '\(OneLine.escaped(String(first.prefix(200))))'")
        }
        return decoded
    }

    private static func connect(_ descriptor: Int32, to path: String, timeout seconds: Double) throws {
        guard !path.isEmpty, path.utf8.count <= ListenAddress.maximumUnixPathBytes else {
            throw Failure(kind: .unreachable, description: "'\(path)' is not a path a UNIX socket can have (1 to \(ListenAddress.maximumUnixPathBytes) bytes)")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { destination in
            destination.copyBytes(from: path.utf8)
        }
        // A server whose backlog is full makes connect wait: no longer than the whole timeout.
        var wait = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status != 0 else { return }
        let code = errno
        let reason: String
        switch code {
        case ENOENT: reason = "no control socket there: is vrules serve running with --control \(path)?"
        case ECONNREFUSED: reason = "nothing listens there (a socket left by a server that stopped?)"
        case EACCES, EPERM: reason = "permission denied: the control socket is for the user vrules serve runs as, and root"
        case ENOTSOCK: reason = "not a socket"
        case EAGAIN, EINPROGRESS:
            throw Failure(kind: .noAnswer, description: "\(path): the server took no connection within \(Self.seconds(seconds))")
        default: reason = Self.errorText(code)
        }
        throw Failure(kind: .unreachable, description: "\(path): \(reason)")
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    private static func errorText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }
}
