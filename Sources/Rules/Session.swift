/// A mail address split the way rules use it. The null reverse-path is all empty strings.
public struct MailAddress: Hashable, Sendable, Codable {
    public var address: String
    public var localPart: String
    public var domain: String

    public init(_ text: String) {
        if let ascii = Self(ascii: text) {
            self = ascii
            return
        }
        var text = text.trimmingCharacters(in: " ")
        if text.hasPrefix("<") && text.hasSuffix(">") { text = String(text.dropFirst().dropLast()) }
        self.address = text
        if let at = text.lastIndex(of: "@") {
            self.localPart = String(text[..<at])
            self.domain = String(text[text.index(after: at)...]).lowercased()
        } else {
            self.localPart = text
            self.domain = ""
        }
    }

    /// The same parse over bytes, for ASCII text (what Postfix sends but for SMTPUTF8 mail):
    /// no grapheme breaking. Nil for other text.
    private init?(ascii text: String) {
        var text = text
        let parts: (address: String, localPart: String, domain: String)? = text.withUTF8 { bytes in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            var start = 0
            var end = bytes.count
            while start < end && bytes[start] == UInt8(ascii: " ") { start += 1 }
            while end > start && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
            if end - start >= 2 && bytes[start] == UInt8(ascii: "<") && bytes[end - 1] == UInt8(ascii: ">") {
                start += 1
                end -= 1
            }
            let address = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            guard let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")) else { return (address, address, "") }
            let domain = String(unsafeUninitializedCapacity: end - at - 1) { domain in
                for (offset, byte) in bytes[(at + 1)..<end].enumerated() {
                    domain[offset] = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
                }
                return end - at - 1
            }
            return (address, String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self), domain)
        }
        guard let parts else { return nil }
        self.address = parts.address
        self.localPart = parts.localPart
        self.domain = parts.domain
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var slice = Substring(self)
        while slice.first == set { slice.removeFirst() }
        while slice.last == set { slice.removeLast() }
        return String(slice)
    }
}

/// What the MTA knows about the session and transaction when a stage runs.
public struct SessionInfo: Hashable, Sendable {
    public var clientIP: String
    public var clientPort: Int?
    /// The client's name as the MTA resolved it (may be nil).
    public var clientName: String?
    public var serverIP: String?
    public var serverName: String?
    public var helo: String?
    public var mailFrom: MailAddress?
    public var rcpts: [MailAddress]
    public var authMechanism: String?
    public var authUsername: String?
    public var tls: TLSInfo?

    public struct TLSInfo: Hashable, Sendable {
        public var version: String?
        public var cipher: String?
        public var sni: String?
        public init(version: String? = nil, cipher: String? = nil, sni: String? = nil) {
            self.version = version
            self.cipher = cipher
            self.sni = sni
        }
    }

    public init(clientIP: String, clientPort: Int? = nil, clientName: String? = nil, serverIP: String? = nil,
                serverName: String? = nil, helo: String? = nil, mailFrom: MailAddress? = nil, rcpts: [MailAddress] = [],
                authMechanism: String? = nil, authUsername: String? = nil, tls: TLSInfo? = nil) {
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.clientName = clientName
        self.serverIP = serverIP
        self.serverName = serverName
        self.helo = helo
        self.mailFrom = mailFrom
        self.rcpts = rcpts
        self.authMechanism = authMechanism
        self.authUsername = authUsername
        self.tls = tls
    }

    /// The virtual domain: the first recipient's domain once known, else the name the client asked for.
    public var virtualDomain: String? {
        if let first = self.rcpts.first, !first.domain.isEmpty { return first.domain }
        return self.tls?.sni
    }
}

extension SessionInfo {
    /// The stages a session has reached before its recipients, in order: connect, helo when a
    /// HELO name is known, authenticate when the client authenticated, mail when a sender is
    /// known. The session simulator and the policy server both plan with it, so a session
    /// runs the same stages whichever of them drives it.
    public var stagesBeforeRecipients: [Stage] {
        var stages: [Stage] = [.connect]
        if self.helo != nil { stages.append(.helo) }
        if self.authMechanism != nil || self.authUsername != nil { stages.append(.authenticate) }
        if self.mailFrom != nil { stages.append(.mail) }
        return stages
    }

    /// The stages that run to arrive at `target`: those reached before it, then `target`
    /// (with Postfix's `smtpd_delay_reject = yes` the first request comes at RCPT).
    public func stages(upTo target: Stage) -> [Stage] {
        self.stagesBeforeRecipients.filter { $0 < target } + [target]
    }
}
