import ArgumentParser
import Configuration
import DNS
import DNSResolver
import Foundation

/// Where DNS answers come from: zone files (offline, with injected faults) or the
/// resolvers configured in `vrules.toml`.
struct ResolverOptions: ParsableArguments {
    @OptionGroup var zones: ZoneOptions

    @Option(help: "The configuration file.")
    var config: String = "vrules.toml"

    /// `[policy]` and `[limits]` of the configuration file (defaults when the default file is absent).
    func loadConfigurationFile() throws -> ConfigurationFile {
        try ConfigurationFile.load(path: self.config, isDefault: self.config == "vrules.toml")
    }

    func makeResolvers() throws -> any DNSResolverSelecting {
        try self.makeResolvers(using: nil)
    }

    /// The resolvers, from `configuration` when it is already loaded.
    func makeResolvers(using configuration: ConfigurationFile?) throws -> any DNSResolverSelecting {
        let dns = try (configuration ?? self.loadConfigurationFile()).dns
        if let resolver = try self.zones.makeResolver(options: dns.root.options.zoneOptions) { return SingleResolver(resolver) }
        return DNSResolverSet(configuration: dns)
    }
}
