#if canImport(Glibc)
import Glibc
#endif

/// One SMTPD access policy delegation request: the `name=value` attributes Postfix sent.
///
/// The attributes vrules reads have fixed slots (`PolicyAttribute`), filled when the request
/// is decoded: no hashing of ~30 names per request and again per lookup. The others (Postfix
/// sends about a dozen vrules does not use) are kept as sent, in order, in one byte array,
/// and made into strings only when read: no allocation per unused attribute. As in the
/// protocol, a name sent twice has its last value.
public struct PolicyRequest: Hashable, Sendable {
    private var known: [String?]
    /// The attributes without a slot: for each, its name's and its value's UTF-8 bytes,
    /// each after its length (four bytes, little-endian).
    private var others: [UInt8]

    /// No attributes.
    init() {
        self.known = Array(repeating: nil, count: PolicyAttribute.allCases.count)
        self.others = []
    }

    public init(attributes: [String: String]) {
        self.init()
        for (name, value) in attributes { self.set(name, value) }
    }

    /// Every attribute, by name (empty values included).
    public var attributes: [String: String] {
        var all: [String: String] = [:]
        for attribute in PolicyAttribute.allCases {
            if let value = self.known[attribute.rawValue] { all[attribute.name] = value }
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
            value = self.known[attribute.rawValue]
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
        guard let value = self.known[attribute.rawValue], !value.isEmpty else { return nil }
        return value
    }

    /// The attribute's value as sent, empty included.
    func value(_ attribute: PolicyAttribute) -> String? {
        self.known[attribute.rawValue]
    }

    mutating func set(_ attribute: PolicyAttribute, _ value: String) {
        self.known[attribute.rawValue] = value
    }

    /// Sets `name`; a name without a slot is appended (the last one sent is the one read).
    mutating func set(_ name: String, _ value: String) {
        if let attribute = PolicyAttribute(name) {
            self.known[attribute.rawValue] = value
        } else {
            var name = name
            var value = value
            name.withUTF8 { name in
                value.withUTF8 { value in
                    self.appendOther(name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value))
                }
            }
        }
    }

    /// Appends an attribute without a slot (`name` is not one of `PolicyAttribute`), as
    /// UTF-8 bytes.
    mutating func appendOther(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        // Room for what Postfix sends at once, instead of growing six times on the way.
        if self.others.capacity == 0 { self.others.reserveCapacity(512) }
        Self.appendLength(name.count, to: &self.others)
        self.others.append(contentsOf: name)
        Self.appendLength(value.count, to: &self.others)
        self.others.append(contentsOf: value)
    }

    private static func appendLength(_ length: Int, to bytes: inout [UInt8]) {
        let length = UInt32(length)
        bytes.append(UInt8(truncatingIfNeeded: length))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length >> 16))
        bytes.append(UInt8(truncatingIfNeeded: length >> 24))
    }

    /// Calls `body` with each attribute without a slot, in the order sent.
    private func forEachOther(_ body: (ArraySlice<UInt8>, ArraySlice<UInt8>) -> Void) {
        let bytes = self.others
        var offset = bytes.startIndex
        func field() -> ArraySlice<UInt8> {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            let start = offset + 4
            offset = start + length
            return bytes[start..<offset]
        }
        while offset < bytes.endIndex {
            let name = field()
            let value = field()
            body(name, value)
        }
    }

    public static func == (lhs: PolicyRequest, rhs: PolicyRequest) -> Bool {
        lhs.attributes == rhs.attributes
    }

    /// The slots alone: requests with equal attributes have equal slots.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.known)
    }
}

/// The request attributes vrules reads.
enum PolicyAttribute: Int, CaseIterable, Sendable {
    case request, protocolState, clientAddress, clientPort, clientName, serverAddress, serverPort, serverName
    case heloName, sender, recipient, instance, saslMethod, saslUsername, encryptionProtocol, encryptionCipher, tlsSNI

    var name: String { String(describing: Self.names[self.rawValue]) }

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

    /// The attribute named by `bytes`, if vrules reads it.
    init?(bytes: UnsafeRawBufferPointer) {
        for (index, name) in Self.names.enumerated()
        where name.utf8CodeUnitCount == bytes.count && name.utf8Start.pointee == bytes.first {
            if memcmp(name.utf8Start, bytes.baseAddress!, bytes.count) == 0 {
                self.init(rawValue: index)
                return
            }
        }
        return nil
    }
}

/// Hard limits on what a peer may send; passing one closes the connection.
public struct PolicyProtocolLimits: Hashable, Sendable {
    public var maximumLineLength: Int
    public var maximumAttributes: Int
    /// Seconds a connection may stay silent (Postfix itself closes idle ones after 300 s).
    public var idleTimeout: Int64
    /// Connections served at once; beyond it, accepting is held back (the kernel's backlog
    /// holds the next ones) until one closes.
    public var maximumConnections: Int

    public init(maximumLineLength: Int = 16_384, maximumAttributes: Int = 128, idleTimeout: Int64 = 600,
                maximumConnections: Int = 1_024) {
        self.maximumLineLength = maximumLineLength
        self.maximumAttributes = maximumAttributes
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
