import DNSResolver
import NIOCore
import NIOPosix
import TOML

/// A mistake in the DNS tables, from the DNS-only entry points below: the file (with
/// `:line:col` for a TOML syntax error), the key path, what is wrong, and the nearest
/// valid spelling.
public struct DNSConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// Dotted key path, e.g. `server.dns.options.ip_strategy`; virtual domains are quoted:
    /// `server.virtual."example.com".dns.type`.
    public var keyPath: String
    public var message: String
    public var suggestion: String?

    public init(file: String, keyPath: String, message: String, suggestion: String? = nil) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
    }

    init(_ error: ConfigurationError) {
        let file = error.kind == .syntax ? "\(error.file):\(error.position)" : error.file
        self.init(file: file, keyPath: error.keyPath, message: error.message, suggestion: error.suggestion)
    }

    public var description: String {
        var text = self.keyPath.isEmpty ? "\(self.file): \(self.message)" : "\(self.file): \(self.keyPath): \(self.message)"
        if let suggestion = self.suggestion { text += "; did you mean '\(suggestion)'?" }
        return text
    }
}

/// The DNS tables alone, for code that embeds the resolver: other tables of the document are
/// left to their own readers. The commands load the whole file (`VrulesConfiguration`).
extension DNSConfiguration {
    public static func load(path: String, ifMissing: MissingFile = .error,
                            resolvConfPath: String = "/etc/resolv.conf") throws(DNSConfigurationError) -> DNSConfiguration {
        switch ConfigurationFileReader.read(path) {
        case .contents(let bytes):
            return try Self.parse(bytes: bytes, file: path, resolvConfPath: resolvConfPath)
        case .missing where ifMissing == .systemDefaults:
            return try Self.parse(bytes: [], file: path, resolvConfPath: resolvConfPath)
        case .missing:
            throw DNSConfigurationError(file: path, keyPath: "", message: "no such file")
        case .unreadable(let reason):
            throw DNSConfigurationError(file: path, keyPath: "", message: reason)
        }
    }

    public static func parse(text: String, file: String, resolvConfPath: String = "/etc/resolv.conf") throws(DNSConfigurationError) -> DNSConfiguration {
        try Self.parse(bytes: Array(text.utf8), file: file, resolvConfPath: resolvConfPath)
    }

    static func parse(bytes: [UInt8], file: String, resolvConfPath: String) throws(DNSConfigurationError) -> DNSConfiguration {
        let document: TOMLTable
        do {
            document = try TOML.parse(bytes)
        } catch {
            throw DNSConfigurationError(file: "\(file):\(error.position)", keyPath: "", message: "TOML syntax error: \(error.reason)")
        }
        var errors: [ConfigurationError] = []
        var server: TOMLTable?
        if let entry = document.entry("server") {
            do throws(ConfigurationError) {
                server = try ValueReader(file: file).table(entry, at: ConfigurationKeyPath.root.child("server"))
            } catch {
                throw DNSConfigurationError(error)
            }
        }
        var reader = DNSSectionReader(file: file, resolvConfPath: resolvConfPath)
        let configuration = reader.read(server: server, errors: &errors)
        if let first = ConfigurationErrors(errors).errors.first { throw DNSConfigurationError(first) }
        return configuration
    }
}

extension DNSResolverSet {
    /// Reads the DNS tables of `path` (see `DNSConfiguration.load`) and builds the resolvers.
    public static func load(path: String, ifMissing: DNSConfiguration.MissingFile = .error,
                            resolvConfPath: String = "/etc/resolv.conf",
                            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        throws(DNSConfigurationError) -> DNSResolverSet
    {
        DNSResolverSet(configuration: try DNSConfiguration.load(path: path, ifMissing: ifMissing, resolvConfPath: resolvConfPath),
                       eventLoopGroup: eventLoopGroup)
    }
}
