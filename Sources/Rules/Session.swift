/// A mail address split the way rules use it. The null reverse-path is all empty strings.
public struct MailAddress: Hashable, Sendable, Codable {
    public var address: String
    public var localPart: String
    public var domain: String

    /// Spaces and one pair of angle brackets around the address go; the domain is what
    /// follows the last `@`, lowercased. Parsed over UTF-8 bytes: the delimiters are ASCII,
    /// and no byte of a multi-byte sequence can be mistaken for one.
    public init(_ text: String) {
        var text = text
        let original = text
        (self.address, self.localPart, self.domain) = text.withUTF8 { bytes in
            var start = 0
            var end = bytes.count
            while start < end && bytes[start] == UInt8(ascii: " ") { start += 1 }
            while end > start && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
            if end - start >= 2 && bytes[start] == UInt8(ascii: "<") && bytes[end - 1] == UInt8(ascii: ">") {
                start += 1
                end -= 1
            }
            func string(_ range: Range<Int>) -> String {
                String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            }
            // The text itself when nothing is trimmed (the usual case): no copy.
            let address = start == 0 && end == bytes.count ? original : string(start..<end)
            guard let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")) else { return (address, address, "") }
            let domainBytes = UnsafeBufferPointer(rebasing: bytes[(at + 1)..<end])
            let domain: String
            if domainBytes.allSatisfy({ $0 < 0x80 }) {
                domain = String(unsafeUninitializedCapacity: domainBytes.count) { lowered in
                    for (index, byte) in domainBytes.enumerated() {
                        lowered[index] = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
                    }
                    return domainBytes.count
                }
            } else {
                domain = string((at + 1)..<end).lowercased()
            }
            return (address, string(start..<at), domain)
        }
    }
}

/// What the MTA knows about the session and transaction when a stage runs.
public struct SessionInfo: Hashable, Sendable {
    public var clientIP: String
    public var clientPort: Int?
    /// The client's name as the MTA resolved it (may be nil).
    public var clientName: String?
    public var serverIP: String?
    /// The port the client connected to (25, 465, 587...): rules may treat submission apart.
    public var serverPort: Int?
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
                serverPort: Int? = nil, serverName: String? = nil, helo: String? = nil, mailFrom: MailAddress? = nil, rcpts: [MailAddress] = [],
                authMechanism: String? = nil, authUsername: String? = nil, tls: TLSInfo? = nil) {
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.clientName = clientName
        self.serverIP = serverIP
        self.serverPort = serverPort
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
    /// `PLAIN:alice` (how `vrules run --auth` and test files give an authenticated client) as
    /// its mechanism and username; nil unless both are there. The username may hold colons.
    public static func authentication(_ text: String) -> (mechanism: String, username: String)? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let mechanism = String(text[..<colon])
        let username = String(text[text.index(after: colon)...])
        guard !mechanism.isEmpty, !username.isEmpty else { return nil }
        return (mechanism, username)
    }
}

extension SessionInfo {
    /// The stages a session has reached before its recipients, in order: connect, helo when a
    /// HELO name is known, authenticate when the client authenticated, mail when a sender is
    /// known. The session simulator and the policy server both plan with it, so a session
    /// runs the same stages whichever of them drives it.
    public var stagesBeforeRecipients: [Stage] {
        Self.orderBeforeRecipients.filter(self.hasReached)
    }

    /// The stages that run to arrive at `target`: those reached before it, then `target`
    /// (with Postfix's `smtpd_delay_reject = yes` the first request comes at RCPT). One
    /// allocation: the policy server plans every request with it.
    public func stages(upTo target: Stage) -> [Stage] {
        var stages: [Stage] = []
        stages.reserveCapacity(Self.orderBeforeRecipients.count + 1)
        for stage in Self.orderBeforeRecipients where stage < target && self.hasReached(stage) {
            stages.append(stage)
        }
        stages.append(target)
        return stages
    }

    private static let orderBeforeRecipients: [Stage] = [.connect, .helo, .authenticate, .mail]

    /// Whether the session has reached `stage`, one of those before the recipients.
    private func hasReached(_ stage: Stage) -> Bool {
        switch stage {
        case .helo: return self.helo != nil
        case .authenticate: return self.authMechanism != nil || self.authUsername != nil
        case .mail: return self.mailFrom != nil
        case .connect: return true
        default: return false
        }
    }
}
