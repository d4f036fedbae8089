import DNS
import DNSResolver

/// The configured network resolvers, from `vrules.toml` (loaded and validated whole, as
/// every command loads it). Without the default file, the system resolver
/// (`/etc/resolv.conf`) with default options.
enum NetworkResolvers {
    static func load(configPath: String) throws -> any DNSResolverSelecting {
        let file = try ConfigurationFile.load(path: configPath, isDefault: configPath == "vrules.toml")
        return DNSResolverSet(configuration: file.dns)
    }
}
