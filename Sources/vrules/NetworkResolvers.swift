import DNS
import DNSResolver
import Foundation

/// The configured network resolvers, from `vrules.toml`.
enum NetworkResolvers {
    static func load(configPath: String) throws -> any DNSResolverSelecting {
        throw UsageFailure("the network resolver is not wired in yet; use --zone FILE")
    }
}
