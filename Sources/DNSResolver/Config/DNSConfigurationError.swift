/// A configuration mistake, said the way an operator needs it: which file, which key, what
/// is wrong, and the nearest valid spelling when there is one.
public struct DNSConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// Dotted key path, e.g. `server.dns.options.ip_strategy`; virtual domains are quoted:
    /// `server.virtual."example.com".dns.type`.
    public var keyPath: String
    public var message: String
    /// The nearest valid key or value, when the mistake looks like a misspelling.
    public var suggestion: String?

    public init(file: String, keyPath: String, message: String, suggestion: String? = nil) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
    }

    public var description: String {
        var text = self.keyPath.isEmpty ? "\(self.file): \(self.message)" : "\(self.file): \(self.keyPath): \(self.message)"
        if let suggestion = self.suggestion { text += "; did you mean '\(suggestion)'?" }
        return text
    }
}

/// Nearest-spelling suggestions for unknown keys and enum values.

