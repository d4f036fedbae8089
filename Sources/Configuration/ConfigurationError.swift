import TOML

/// One mistake in a configuration file, said the way an operator and an editor need it:
/// `vrules.toml:5:1: error: server.dns.options.timout: unknown key (did you mean 'timeout'?) [config-unknown-key]`.
/// `vrules check` prints these through its diagnostics; `run`, `serve` and `dns` print
/// the same text when they refuse a file, so the two can never disagree.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of mistake; the raw values are `vrules check`'s diagnostic codes.
    public enum Kind: String, Hashable, Sendable {
        case syntax = "config-syntax"
        case unknownKey = "config-unknown-key"
        case type = "config-type"
        case value = "config-value"
        case unreadable = "unreadable-file"
    }

    public var file: String
    public var position: TOMLPosition
    /// Dotted key path, keys that are not bare quoted: `server.virtual."example.com".dns.type`,
    /// array elements indexed: `server.dns.servers[0]`. Empty for syntax errors.
    public var keyPath: String
    public var message: String
    /// The nearest valid key or value, when the mistake looks like a misspelling.
    public var suggestion: String?
    public var kind: Kind

    public init(file: String, position: TOMLPosition, keyPath: String, message: String, suggestion: String? = nil, kind: Kind) {
        self.file = file
        self.position = position
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
        self.kind = kind
    }

    /// The message with its key path and suggestion: `limits.memory: invalid size '64 MB' (...)`.
    public var text: String {
        var text = self.keyPath.isEmpty ? self.message : "\(self.keyPath): \(self.message)"
        if let suggestion = self.suggestion { text += " (did you mean '\(suggestion)'?)" }
        return text
    }

    public var description: String {
        "\(self.file):\(self.position.line):\(self.position.column): error: \(self.text) [\(self.kind.rawValue)]"
    }
}

/// Every mistake found in one file, in file order: what `load` throws.
public struct ConfigurationErrors: Error, Hashable, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]

    public init(_ errors: [ConfigurationError]) {
        self.errors = errors.sorted { ($0.file, $0.position, $0.text) < ($1.file, $1.position, $1.text) }
    }

    public var description: String {
        self.errors.map(\.description).joined(separator: "\n")
    }
}
