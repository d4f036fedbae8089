#if canImport(Glibc)
import Glibc
#endif

/// A blocking client of the policy protocol, for the tests:
/// one connection, one request at a time, exactly as an smtpd process asks.
public final class PolicyClient: @unchecked Sendable {
    // @unchecked: a client is one blocking connection, used by one test thread at a time.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private var descriptor: Int32
    private var pending: [UInt8] = []

    /// Connects to `host:port` (IPv4 or IPv6 literal) or, with `unixPath`, a UNIX socket.
    public init(host: String = "127.0.0.1", port: Int) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        guard connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            Glibc.close(descriptor)
            throw Failure(description: "cannot connect to \(host):\(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.descriptor = descriptor
    }

    public init(unixPath: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(unixPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw Failure(description: "cannot connect to \(unixPath): errno \(errno)")
        }
        self.descriptor = descriptor
    }

    deinit { self.close() }

    /// Closes the connection (also done when the client goes away).
    public func close() {
        guard self.descriptor >= 0 else { return }
        Glibc.close(self.descriptor)
        self.descriptor = -1
    }

    /// Sets a receive timeout, so that a server that never answers fails the read.
    public func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends raw bytes.
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += sent
        }
    }

    /// Half-closes the connection: no more requests, answers still wanted.
    public func shutdownWrite() {
        shutdown(self.descriptor, Int32(SHUT_WR))
    }

    /// A request as it goes on the wire, attributes in name order.
    public static func encode(_ attributes: [String: String]) -> [UInt8] {
        var text = ""
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) { text += "\(name)=\(value)\n" }
        return Array((text + "\n").utf8)
    }

    /// Sends one request and returns the action, or nil when the server closed the connection.
    public func ask(_ attributes: [(String, String)]) throws -> String? {
        var text = ""
        for (name, value) in attributes { text += "\(name)=\(value)\n" }
        text += "\n"
        try self.send(Array(text.utf8))
        return try self.readAnswer()
    }

    public func ask(_ attributes: [String: String]) throws -> String? {
        try self.ask(attributes.sorted { $0.key < $1.key })
    }

    /// Reads `action=...` and the empty line; nil on end of stream.
    public func readAnswer() throws -> String? {
        while true {
            if let end = self.findTerminator() {
                let answer = String(decoding: self.pending[..<end], as: UTF8.self)
                self.pending.removeFirst(end + 2)
                guard answer.hasPrefix("action=") else { throw Failure(description: "unexpected answer '\(answer)'") }
                return String(answer.dropFirst(7))
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            guard count > 0 else { throw Failure(description: "receive failed: errno \(errno)") }
            self.pending += buffer[..<count]
        }
    }

    /// Whether the server has sent something (or closed) that is not read yet.
    public var hasInput: Bool {
        var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) > 0
    }

    /// Reads until the server closes the connection (what `readAnswer` had read first too).
    public func readToEnd() throws -> [UInt8] {
        var received = self.pending
        self.pending = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return received }
            guard count > 0 else { throw Failure(description: "receive failed: errno \(errno)") }
            received += buffer[..<count]
        }
    }

    private func findTerminator() -> Int? {
        guard self.pending.count >= 2 else { return nil }
        for index in 0..<(self.pending.count - 1) where self.pending[index] == 10 && self.pending[index + 1] == 10 {
            return index
        }
        return nil
    }
}
