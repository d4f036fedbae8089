import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One SMTP reply: the code, the enhanced status code of its first line (RFC 2034), and the
/// text of every line.
struct SMTPReply: CustomStringConvertible, Sendable {
    var code: Int
    var lines: [String]

    /// "5.7.25" from "550 5.7.25 <...>: Client host rejected: ...", when present.
    var enhancedCode: String? {
        guard let first = self.lines.first, first.count > 4 else { return nil }
        let word = first.dropFirst(4).prefix { $0 != " " }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return nil }
        return String(word)
    }

    var description: String { self.lines.joined(separator: "\n") }
}

/// A blocking SMTP client over a plain TCP socket, bound to a chosen 127.0.0.x source address
/// so that Postfix (and so vrules) sees the client as that address. Every exchange is kept in
/// `transcript` for failure messages. Run it off the cooperative pool (`blocking`).
final class SMTPClient {
    private let descriptor: Int32
    private var pending: [UInt8] = []
    private(set) var transcript: [String] = []

    init(source: String, port: UInt16, timeoutSeconds: Int = 30) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SetupError(description: "socket() failed: errno \(errno)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        local.sin_port = 0
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw SetupError(description: "cannot bind the SMTP client to \(source): errno \(code)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        remote.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(descriptor)
            throw SetupError(description: "cannot connect from \(source) to 127.0.0.1:\(port): errno \(code)")
        }
        self.descriptor = descriptor
    }

    deinit { close(self.descriptor) }

    /// Reads one (possibly multi-line) reply.
    func readReply() throws -> SMTPReply {
        var lines: [String] = []
        while true {
            let line = try self.readLine()
            self.transcript.append("S: \(line)")
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)) else {
                throw SetupError(description: "not an SMTP reply line: '\(line)'\n\(self.transcriptText)")
            }
            lines.append(line)
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return SMTPReply(code: code, lines: lines) }
        }
    }

    /// Sends one command line and reads its reply.
    func command(_ line: String) throws -> SMTPReply {
        try self.send(line)
        return try self.readReply()
    }

    func send(_ line: String, logged: String? = nil) throws {
        self.transcript.append("C: \(logged ?? line)")
        let bytes = Array((line + "\r\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw SetupError(description: "send failed: errno \(errno)\n\(self.transcriptText)") }
            offset += sent
        }
    }

    var transcriptText: String { self.transcript.map { "    \($0)" }.joined(separator: "\n") }

    private func readLine() throws -> String {
        while true {
            if let newline = self.pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(self.pending[..<newline])
                self.pending.removeFirst(newline + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { throw SetupError(description: "the server closed the connection\n\(self.transcriptText)") }
            if count < 0 {
                let code = errno
                let reason = code == EAGAIN || code == EWOULDBLOCK ? "no reply within the timeout" : "recv failed: errno \(code)"
                throw SetupError(description: "\(reason)\n\(self.transcriptText)")
            }
            self.pending += buffer[0..<count]
        }
    }
}

/// A whole SMTP session as a well-behaved client runs it: greeting, EHLO, MAIL, one RCPT;
/// DATA and the message only when the recipient was accepted; then QUIT. Every reply is kept.
struct SMTPSession: Sendable {
    var greeting: SMTPReply
    var ehlo: SMTPReply
    var mail: SMTPReply
    var rcpt: SMTPReply
    var data: SMTPReply?
    var message: SMTPReply?
    var quit: SMTPReply
    var transcript: String

    static func run(port: UInt16, source: String, helo: String, from: String, to: String) throws -> SMTPSession {
        let client = try SMTPClient(source: source, port: port)
        let greeting = try client.readReply()
        let ehlo = try client.command("EHLO \(helo)")
        let mail = try client.command("MAIL FROM:<\(from)>")
        let rcpt = try client.command("RCPT TO:<\(to)>")
        var data: SMTPReply?
        var message: SMTPReply?
        if rcpt.code == 250 {
            data = try client.command("DATA")
            if data?.code == 354 {
                let body = [
                    "From: <\(from)>", "To: <\(to)>", "Subject: vrules end-to-end test",
                    "Message-ID: <\(UUID().uuidString)@\(helo)>", "", "Sent by Tests/IntegrationTests.",
                ]
                for line in body { try client.send(line.hasPrefix(".") ? "." + line : line) }
                message = try client.command(".")
            }
        }
        let quit = try client.command("QUIT")
        return SMTPSession(greeting: greeting, ehlo: ehlo, mail: mail, rcpt: rcpt, data: data, message: message, quit: quit,
                           transcript: client.transcriptText)
    }
}
