/// Sends each question to the resolver of the longest zone its name falls under
/// (`[server.dns.zones."<zone>"]`), else to the fallback: DNSBL zones to a local resolver,
/// everything else to the configured one, as Unbound's `forward-zone` does.
public struct ZoneRoutedResolver: DNSResolving {
    public let fallback: any DNSResolving
    /// Normalised zone → its resolver.
    public let routes: [String: any DNSResolving]

    public init(fallback: any DNSResolving, routes: [String: any DNSResolving]) {
        self.fallback = fallback
        self.routes = routes
    }

    /// The resolver for `name`: the longest routed zone that is `name` or one of its parents.
    public func resolver(for name: String) -> any DNSResolving {
        DNSName.selfAndAncestors(name).lazy.compactMap { self.routes[String($0)] }.first ?? self.fallback
    }

    public func resolve(_ question: DNSQuestion) async -> DNSQueryResult {
        await self.resolver(for: question.name).resolve(question)
    }

    public func startResolving(_ question: DNSQuestion, preferring executor: (any TaskExecutor)?,
                               deliver: @escaping @Sendable (DNSQueryResult) -> Void) -> DNSLookupHandle {
        self.resolver(for: question.name).startResolving(question, preferring: executor, deliver: deliver)
    }

    public func immediateResult(for question: DNSQuestion) -> DNSQueryResult? {
        self.resolver(for: question.name).immediateResult(for: question)
    }

    /// The fallback's, when every routed resolver keeps a cache too: a check that read a
    /// routed zone's answers must not be reused where that zone's resolver keeps none.
    public var spfResultMemo: SPFResultMemo? {
        guard self.routes.values.allSatisfy({ $0.spfResultMemo != nil }) else { return nil }
        return self.fallback.spfResultMemo
    }

    public var ipStrategy: IPStrategy { self.fallback.ipStrategy }
    public var rotatesRecords: Bool { self.fallback.rotatesRecords }
}
