#if canImport(Glibc)
import Glibc
#endif

/// One SMTPD access policy delegation request: the `name=value` attributes Postfix sent.
///
/// The attributes vrules reads have fixed slots (`PolicyAttribute`), filled when the request
/// is decoded: no hashing of ~30 names per request and again per lookup. The others (Postfix
/// sends about a dozen vrules does not use) are read, when at all, from the request's lines
/// as sent, kept as one byte array: decoding copies the lines once and makes no string or
/// array per attribute. As in the protocol, a name sent twice has its last value.
public struct PolicyRequest: Hashable, Sendable {
    /// The slotted attributes' values, "" where not sent; `sent` has a bit per slot that was.
    /// Not `[String?]`: an array of optionals is set and freed through the generic value
    /// witnesses, element by element, which showed in profiles (a request sets and frees 17).
    private var known: [String]
    private var sent: UInt32 = 0
    /// The request's lines as sent (`name=value`, each ended by LF, or CR LF), slotted
    /// attributes included: the others are found here. A name has no `=`, a value no LF.
    private var lines: [UInt8]

    /// No attributes.
    init() {
        assert(PolicyAttribute.allCases.count <= UInt32.bitWidth, "a slot per bit of `sent`")
        self.known = Array(repeating: "", count: PolicyAttribute.allCases.count)
        self.lines = []
    }

    public init(attributes: [String: String]) {
        self.init()
        for (name, value) in attributes { self.set(name, value) }
    }

    /// Every attribute, by name (empty values included).
    public var attributes: [String: String] {
        var all: [String: String] = [:]
        for attribute in PolicyAttribute.allCases {
            if let value = self.value(attribute) { all[attribute.name] = value }
        }
        self.forEachOther { name, value in
            all[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
        }
        return all
    }

    /// The attribute's value; nil when it is missing or empty (Postfix sends `name=` for
    /// what it does not know).
    public subscript(name: String) -> String? {
        let value: String?
        if let attribute = PolicyAttribute(name) {
            value = self.value(attribute)
        } else {
            var found: String?
            self.forEachOther { other, otherValue in
                if other.elementsEqual(name.utf8) { found = String(decoding: otherValue, as: UTF8.self) }
            }
            value = found
        }
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    /// The attribute's value; nil when it is missing or empty.
    subscript(attribute: PolicyAttribute) -> String? {
        guard let value = self.value(attribute), !value.isEmpty else { return nil }
        return value
    }

    /// The attribute's value as sent, empty included.
    func value(_ attribute: PolicyAttribute) -> String? {
        self.sent & attribute.bit != 0 ? self.known[attribute.rawValue] : nil
    }

    mutating func set(_ attribute: PolicyAttribute, _ value: String) {
        self.known[attribute.rawValue] = value
        self.sent |= attribute.bit
    }

    /// Sets `name`; a name without a slot is added as a line (the last one sent is the one
    /// read). The protocol cannot carry `=` in a name or a line feed in a value: a value set
    /// here is cut at its first line feed, as a peer's would be.
    mutating func set(_ name: String, _ value: String) {
        if let attribute = PolicyAttribute(name) {
            self.set(attribute, value)
        } else {
            precondition(!name.utf8.contains(UInt8(ascii: "=")), "an attribute name has no '='")
            self.lines.append(contentsOf: name.utf8)
            self.lines.append(UInt8(ascii: "="))
            self.lines.append(contentsOf: value.utf8.prefix { $0 != UInt8(ascii: "\n") })
            self.lines.append(UInt8(ascii: "\n"))
        }
    }

    /// Adds lines as sent (complete, checked by the decoder).
    mutating func appendLines(_ bytes: UnsafeRawBufferPointer) {
        self.lines.append(contentsOf: bytes)
    }

    /// Calls `body` with each attribute without a slot, in the order sent.
    private func forEachOther(_ body: (ArraySlice<UInt8>, ArraySlice<UInt8>) -> Void) {
        let bytes = self.lines
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let lineEnd = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            var end = lineEnd
            if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            if let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) {
                let name = bytes[start..<equals]
                let isSlotted = name.withUnsafeBytes { PolicyAttribute(bytes: $0) } != nil
                if !isSlotted { body(name, bytes[(equals + 1)..<end]) }
            }
            start = lineEnd + 1
        }
    }

    public static func == (lhs: PolicyRequest, rhs: PolicyRequest) -> Bool {
        lhs.attributes == rhs.attributes
    }

    /// The slots alone: requests with equal attributes have equal slots.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.sent)
        hasher.combine(self.known)
    }
}

extension PolicyRequest {
    /// The attributes Postfix's policy protocol sends (SMTPD_POLICY_README, Postfix 3.x), and
    /// the two vrules reads beside them (`server_name`, `tls_sni`): what a test file's request
    /// may name, so that a misspelt one is refused instead of left unread.
    public static let attributeNames: Set<String> = [
        "request", "protocol_state", "protocol_name", "helo_name", "queue_id", "sender", "recipient", "recipient_count",
        "client_address", "client_name", "reverse_client_name", "instance", "sasl_method", "sasl_username", "sasl_sender",
        "size", "ccert_subject", "ccert_issuer", "ccert_fingerprint", "ccert_pubkey_fingerprint", "encryption_protocol",
        "encryption_cipher", "encryption_keysize", "etrn_domain", "stress", "client_port", "policy_context",
        "server_address", "server_port", "compatibility_level", "mail_version", "server_name", "tls_sni",
    ]
}

/// The request attributes vrules reads.
enum PolicyAttribute: Int, CaseIterable, Sendable {
    case request, protocolState, clientAddress, clientPort, clientName, serverAddress, serverPort, serverName
    case heloName, sender, recipient, instance, saslMethod, saslUsername, encryptionProtocol, encryptionCipher, tlsSNI

    var name: String { String(describing: Self.names[self.rawValue]) }

    /// This attribute's bit in `PolicyRequest`'s set of the slots that were sent.
    var bit: UInt32 { 1 << UInt32(self.rawValue) }

    private static let names: [StaticString] = [
        "request", "protocol_state", "client_address", "client_port", "client_name", "server_address", "server_port",
        "server_name", "helo_name", "sender", "recipient", "instance", "sasl_method", "sasl_username",
        "encryption_protocol", "encryption_cipher", "tls_sni",
    ]

    init?(_ name: String) {
        var name = name
        guard let found = name.withUTF8({ Self(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = found
    }

    /// The attribute named by `bytes`, if vrules reads it. Called for every line of every
    /// request: the length, then the first and last bytes, pick the one candidate (they
    /// differ for every slotted name), which the whole name then confirms.
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 6, let base = bytes.baseAddress else { return nil }
        let first = bytes[0]
        let last = bytes[bytes.count - 1]
        let candidate: PolicyAttribute?
        switch bytes.count {
        case 6: candidate = first == UInt8(ascii: "s") ? .sender : nil
        case 7: candidate = first == UInt8(ascii: "r") ? .request : first == UInt8(ascii: "t") ? .tlsSNI : nil
        case 8: candidate = first == UInt8(ascii: "i") ? .instance : nil
        case 9: candidate = first == UInt8(ascii: "h") ? .heloName : first == UInt8(ascii: "r") ? .recipient : nil
        case 11:
            switch (first, last) {
            case (UInt8(ascii: "c"), UInt8(ascii: "t")): candidate = .clientPort
            case (UInt8(ascii: "c"), UInt8(ascii: "e")): candidate = .clientName
            case (UInt8(ascii: "s"), UInt8(ascii: "t")): candidate = .serverPort
            case (UInt8(ascii: "s"), UInt8(ascii: "e")): candidate = .serverName
            case (UInt8(ascii: "s"), UInt8(ascii: "d")): candidate = .saslMethod
            default: candidate = nil
            }
        case 13: candidate = first == UInt8(ascii: "s") ? .saslUsername : nil
        case 14:
            switch first {
            case UInt8(ascii: "p"): candidate = .protocolState
            case UInt8(ascii: "c"): candidate = .clientAddress
            case UInt8(ascii: "s"): candidate = .serverAddress
            default: candidate = nil
            }
        case 17: candidate = first == UInt8(ascii: "e") ? .encryptionCipher : nil
        case 19: candidate = first == UInt8(ascii: "e") ? .encryptionProtocol : nil
        default: candidate = nil
        }
        guard let candidate else { return nil }
        let name = Self.names[candidate.rawValue]
        guard name.utf8CodeUnitCount == bytes.count, memcmp(name.utf8Start, base, bytes.count) == 0 else { return nil }
        self = candidate
    }
}

/// Hard limits on what a peer may send; passing one closes the connection.
public struct PolicyProtocolLimits: Hashable, Sendable {
    public var maximumLineLength: Int
    public var maximumAttributes: Int
    /// Bytes of one request's lines in all. Postfix's requests take a few hundred bytes to a
    /// few KiB; without this bound the line and attribute limits would let each connection
    /// hold 2 MiB of a request it never ends (1,024 of them, 2 GiB).
    public var maximumRequestSize: Int
    /// Seconds a connection may stay silent (Postfix itself closes idle ones after 300 s).
    public var idleTimeout: Int64
    /// Connections served at once; beyond it, accepting is held back (the kernel's backlog
    /// holds the next ones) until one closes.
    public var maximumConnections: Int

    public init(maximumLineLength: Int = 16_384, maximumAttributes: Int = 128, maximumRequestSize: Int = 65_536,
                idleTimeout: Int64 = 600, maximumConnections: Int = 1_024) {
        self.maximumLineLength = maximumLineLength
        self.maximumAttributes = maximumAttributes
        self.maximumRequestSize = maximumRequestSize
        self.idleTimeout = idleTimeout
        self.maximumConnections = maximumConnections
    }
}

/// Why a request was refused. The connection is closed without an answer, as the
/// protocol asks, and the reason is logged.
public struct PolicyProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case lineTooLong = "line too long"
        case tooManyAttributes = "too many attributes"
        case requestTooLarge = "request too large"
        case malformedAttribute = "malformed attribute"
        case invalidBytes = "invalid bytes"
        case unknownRequest = "unknown request type"
        case missingAttribute = "missing attribute"
        case idle = "idle timeout"
    }

    public var code: Code
    public var reason: String

    public var description: String { "\(self.code.rawValue): \(self.reason)" }
}
