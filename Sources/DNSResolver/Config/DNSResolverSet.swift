import DNS
import NIOCore
import NIOPosix

/// The resolvers of a configuration: one per distinct resolver configuration (so virtual
/// domains that say the same thing share a cache), chosen per domain by walking up parent
/// domains to the nearest `[server.virtual."<domain>".dns]`, else the root one.
public final class DNSResolverSet: DNSResolverSelecting {
    public let configuration: DNSConfiguration
    public let root: DNSNetworkResolver
    private let byDomain: [String: DNSNetworkResolver]

    public init(configuration: DNSConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        var shared: [DNSConfiguration.Resolver: DNSNetworkResolver] = [:]
        func make(_ resolver: DNSConfiguration.Resolver) -> DNSNetworkResolver {
            if let existing = shared[resolver] { return existing }
            let created = DNSNetworkResolver(servers: resolver.servers, options: resolver.options, eventLoopGroup: eventLoopGroup)
            shared[resolver] = created
            return created
        }
        self.root = make(configuration.root)
        var byDomain: [String: DNSNetworkResolver] = [:]
        for (domain, resolver) in configuration.virtualDomains { byDomain[domain] = make(resolver) }
        self.byDomain = byDomain
        var routes: [String: any DNSResolving] = [:]
        for (zone, resolver) in configuration.zones { routes[zone] = make(resolver) }
        self.zoneRoutes = routes
    }

    /// `[server.dns.zones]`: queries under these zones go to their own resolver.
    private let zoneRoutes: [String: any DNSResolving]

    /// How many distinct resolvers (and caches) there are.
    public var distinctResolverCount: Int {
        Set(([self.root] + Array(self.byDomain.values)).map { ObjectIdentifier($0) }).count + self.zoneRoutes.count
    }

    public func resolver(forDomain domain: String?) -> any DNSResolving {
        let chosen = self.networkResolver(forDomain: domain)
        guard !self.zoneRoutes.isEmpty else { return chosen }
        return ZoneRoutedResolver(fallback: chosen, routes: self.zoneRoutes)
    }

    public func networkResolver(forDomain domain: String?) -> DNSNetworkResolver {
        guard let domain, !self.byDomain.isEmpty, let name = try? DNSName.normalize(domain) else { return self.root }
        return DNSName.selfAndAncestors(name).lazy.compactMap { self.byDomain[String($0)] }.first ?? self.root
    }
}
