import DNS
import DNSResolver
import Foundation

/// The configured network resolvers, from `vrules.toml`. Without the file, the system
/// resolver (`/etc/resolv.conf`) with default options.
enum NetworkResolvers {
    static func load(configPath: String) throws -> any DNSResolverSelecting {
        try DNSResolverSet.load(path: configPath, ifMissing: configPath == "vrules.toml" ? .systemDefaults : .error)
    }
}
