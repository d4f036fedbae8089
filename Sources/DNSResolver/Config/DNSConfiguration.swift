import DNS
import NIOCore

/// The DNS part of `vrules.toml`: `[server.dns]`, `[server.dns.options]` and every
/// `[server.virtual."<domain>".dns]`, as values. The Configuration module reads and
/// validates the file; this module only uses the result, so it needs no TOML.
public struct DNSConfiguration: Hashable, Sendable {
    public enum ResolverType: String, Hashable, Sendable, CaseIterable {
        case system, google, cloudflare, custom
    }

    /// Everything that makes one resolver: equal configurations share one resolver.
    public struct Resolver: Hashable, Sendable {
        public var type: ResolverType
        public var servers: [DNSServerAddress]
        public var options: DNSResolverOptions
        /// From resolv.conf with `type = "system"`; kept for diagnostics. Mail names are
        /// always fully qualified, so no search list is ever applied to them.
        public var search: [String]
        public var ndots: Int

        public init(type: ResolverType, servers: [DNSServerAddress], options: DNSResolverOptions,
                    search: [String] = [], ndots: Int = 1) {
            self.type = type
            self.servers = servers
            self.options = options
            self.search = search
            self.ndots = ndots
        }
    }

    public var root: Resolver
    /// Normalised virtual domain → its resolver, for domains that have a `dns` table.
    public var virtualDomains: [String: Resolver]
    /// Normalised zone → the resolver every query under it goes to (`[server.dns.zones."<zone>"]`),
    /// whichever resolver the transaction uses otherwise.
    public var zones: [String: Resolver] = [:]

    public init(root: Resolver, virtualDomains: [String: Resolver] = [:]) {
        self.root = root
        self.virtualDomains = virtualDomains
    }

    public static let googleServers: [DNSServerAddress] = [
        "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
    ].map { DNSServerAddress(parsing: $0)! }

    public static let cloudflareServers: [DNSServerAddress] = [
        "1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001",
    ].map { DNSServerAddress(parsing: $0)! }

    /// What loading does when the file does not exist.
    public enum MissingFile: Sendable {
        /// Fail with "no such file" (an explicit `--config FILE`).
        case error
        /// Behave as an empty file: `type = "system"` with default options (the default
        /// `vrules.toml` when there is none).
        case systemDefaults
    }
}
