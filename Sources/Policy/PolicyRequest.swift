/// One SMTPD access policy delegation request: the `name=value` attributes Postfix sent.
public struct PolicyRequest: Hashable, Sendable {
    public private(set) var attributes: [String: String]

    public init(attributes: [String: String]) {
        self.attributes = attributes
    }

    public subscript(name: String) -> String? {
        guard let value = self.attributes[name], !value.isEmpty else { return nil }
        return value
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
