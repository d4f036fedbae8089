import DNS
import NIOCore
import Testing
import VrulesTestSupport
@testable import DNSResolver

/// Against Knot DNS (Debian package `knot`) started on a loopback port with the zones of
/// `Tests/Fixtures/zones`. A missing `knotd` fails these tests with the package to install.
@Suite("Resolver against Knot DNS")
struct KnotTests {
    func resolver(strategy: IPStrategy = .ipv4ThenIpv6, cacheSize: Int = 64) async throws -> DNSNetworkResolver {
        let knot = try await SharedRealServers.shared.authoritative()
        return DNSNetworkResolver(servers: [knot.address],
                                  options: DNSResolverOptions(timeout: .seconds(2), attempts: 1, ipStrategy: strategy,
                                                              cacheSize: cacheSize))
    }

    @Test("A and AAAA records")
    func addresses() async throws {
        let resolver = try await self.resolver()
        let v4 = try await resolver.resolve(DNSQuestion(name: "host.vrules.test", type: .a)).get()
        #expect(v4.records.map(\.data) == [.a(IPAddress("192.0.2.10")!)])
        #expect(v4.records[0].ttl == 300)
        #expect(v4.server == (try await SharedRealServers.shared.authoritative()).address.description)
        let v6 = try await resolver.resolve(DNSQuestion(name: "HOST.vrules.test", type: .aaaa)).get()
        #expect(v6.records.map(\.data) == [.aaaa(IPAddress("2001:db8::10")!)])
    }

    @Test("every ip_strategy through AddressLookup", arguments: IPStrategy.allCases)
    func strategies(strategy: IPStrategy) async throws {
        let resolver = try await self.resolver(strategy: strategy)
        let dual = try await resolver.run(AddressLookup(name: "dual.vrules.test", strategy: resolver.ipStrategy)).get()
        let v4 = ["192.0.2.11", "192.0.2.12"]
        let v6 = ["2001:db8::11"]
        let expected: [String]
        switch strategy {
        case .ipv4Only, .ipv4ThenIpv6: expected = v4
        case .ipv6Only, .ipv6ThenIpv4: expected = v6
        case .ipv4AndIpv6: expected = v4 + v6
        }
        #expect(dual.addresses.map(\.description).sorted() == expected.sorted())
        #expect(Set(dual.addresses.prefix(1).map(\.isIPv4)) == [strategy == .ipv4Only || strategy == .ipv4ThenIpv6 || strategy == .ipv4AndIpv6])

        // A name with only the other family falls back for the "then" strategies.
        let v6only = try await resolver.run(AddressLookup(name: "v6only.vrules.test", strategy: strategy)).get()
        switch strategy {
        case .ipv4Only: #expect(v6only.addresses.isEmpty && v6only.outcome == .nodata)
        default: #expect(v6only.addresses.map(\.description) == ["2001:db8::12"])
        }
    }

    @Test("PTR for IPv4 and IPv6 addresses")
    func reverse() async throws {
        let resolver = try await self.resolver()
        let v4 = try await resolver.run(ReverseLookup(ip: IPAddress("192.0.2.10")!)).get()
        #expect(v4.names == ["host.vrules.test"])
        let v6 = try await resolver.run(ReverseLookup(ip: IPAddress("2001:db8::10")!)).get()
        #expect(v6.names == ["host.vrules.test"])
        let none = try await resolver.run(ReverseLookup(ip: IPAddress("192.0.2.200")!)).get()
        #expect(none.outcome == .nxdomain && none.names.isEmpty)
    }

    @Test("MX with equal preferences, Null MX and implicit MX")
    func mx() async throws {
        let resolver = try await self.resolver()
        let route = try await resolver.run(MXLocation(domain: "mail.vrules.test")).get()
        #expect(route.kind == .mx)
        #expect(Set(route.hosts.prefix(2).map(\.host)) == ["mx1.vrules.test", "mx2.vrules.test"])
        #expect(route.hosts.map(\.preference) == [10, 10, 20])
        #expect(route.hosts.last?.host == "mx3.vrules.test")

        let null = try await resolver.run(MXLocation(domain: "nullmx.vrules.test")).get()
        #expect(null.kind == .null)
        let raw = try await resolver.resolve(DNSQuestion(name: "nullmx.vrules.test", type: .mx)).get()
        #expect(raw.records.map(\.data) == [.mx(preference: 0, exchange: "")])

        let implicit = try await resolver.run(MXLocation(domain: "implicit.vrules.test")).get()
        #expect(implicit.kind == .implicit)
        #expect(implicit.hosts.map(\.host) == ["implicit.vrules.test"])

        let none = try await resolver.run(MXLocation(domain: "nothing.vrules.test")).get()
        #expect(none.kind == .none)
    }

    @Test("a CNAME chain is followed and kept")
    func cnameChain() async throws {
        let resolver = try await self.resolver()
        let answer = try await resolver.resolve(DNSQuestion(name: "alias.vrules.test", type: .a)).get()
        #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.10")!)])
        #expect(answer.chain.map(\.name) == ["alias.vrules.test", "alias2.vrules.test", "alias3.vrules.test"])
        let dangling = try await resolver.resolve(DNSQuestion(name: "dangling.vrules.test", type: .a)).get()
        #expect(dangling.outcome == .nxdomain)
        #expect(dangling.chain.count == 1)
    }

    @Test("a TXT RRset too large for UDP comes back truncated and is fetched over TCP")
    func largeReply() async throws {
        let resolver = try await self.resolver()
        let answer = try await resolver.resolve(DNSQuestion(name: "big.vrules.test", type: .txt)).get()
        #expect(answer.records.count == 10)
        let total = answer.records.reduce(0) { sum, record in
            if case .txt(let strings) = record.data { return sum + strings.reduce(0) { $0 + $1.count } }
            return sum
        }
        #expect(total == 10 * 198)
    }

    @Test("a name that does not exist, and a name without the type asked")
    func negative() async throws {
        let resolver = try await self.resolver()
        let missing = await resolver.resolve(DNSQuestion(name: "does-not-exist.vrules.test", type: .a))
        #expect(outcome(missing) == .nxdomain)
        let nodata = await resolver.resolve(DNSQuestion(name: "host.vrules.test", type: .mx))
        #expect(outcome(nodata) == .nodata)
        // Negative answers are cached from the zone's SOA (MINIMUM 60).
        #expect(resolver.immediateResult(for: DNSQuestion(name: "does-not-exist.vrules.test", type: .a)) != nil)
    }

    @Test("SRV, TXT and SOA records decode")
    func otherTypes() async throws {
        let resolver = try await self.resolver()
        let srv = try await resolver.resolve(DNSQuestion(name: "_submission._tcp.vrules.test", type: .srv)).get()
        #expect(srv.records.map(\.data) == [.srv(priority: 0, weight: 1, port: 587, target: "host.vrules.test")])
        let txt = try await resolver.resolve(DNSQuestion(name: "host.vrules.test", type: .txt)).get()
        #expect(txt.records.map(\.data) == [.txt([Array("v=spf1 ip4:192.0.2.10 -all".utf8)])])
        let soa = try await resolver.resolve(DNSQuestion(name: "vrules.test", type: .soa)).get()
        guard case .soa(let data)? = soa.records.first?.data else {
            Issue.record("no SOA")
            return
        }
        #expect(data.mname == "ns.vrules.test" && data.minimum == 60)
    }

    @Test("iprev: pass for forward-confirmed names, fail when they disagree, permerror without PTR")
    func iprev() async throws {
        let resolver = try await self.resolver()
        let pass = await resolver.run(IprevCheck(ip: IPAddress("192.0.2.10")!))
        #expect(pass.status == .pass && pass.name == "host.vrules.test")
        let pass6 = await resolver.run(IprevCheck(ip: IPAddress("2001:db8::10")!))
        #expect(pass6.status == .pass)
        let fail = await resolver.run(IprevCheck(ip: IPAddress("192.0.2.66")!))
        #expect(fail.status == .fail)
        let permerror = await resolver.run(IprevCheck(ip: IPAddress("192.0.2.201")!))
        #expect(permerror.status == .permerror)
    }

    @Test("a server that is not there is a timeout, bounded by (1 + attempts) × timeout")
    func deadServer() async throws {
        // "Not there" as a black hole: a bound socket that never reads, so no ICMP comes back.
        // (A closed port is refused at once: UnreachableServerTests.)
        let silent = try SilentUDPSocket()
        defer { silent.close() }
        let port = silent.port
        let resolver = DNSNetworkResolver(servers: [DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: port)],
                                          options: DNSResolverOptions(timeout: .milliseconds(500), attempts: 1))
        let (result, ms) = await elapsedMilliseconds { await resolver.resolve(DNSQuestion(name: "host.vrules.test", type: .a)) }
        #expect(errorKind(result) == .timeout)
        // Two passes of 500 ms; the upper bound leaves room for a loaded CI machine (the
        // exact attempt count is proven against the fake server, which counts queries).
        #expect(ms >= 990 && ms < 3000, "took \(ms) ms")
    }
}

/// Unbound (Debian package `unbound`) validating zones signed by Knot.
@Suite("Resolver against a validating Unbound")
struct UnboundTests {
    func resolver(validate: Bool = true) async throws -> DNSNetworkResolver {
        let servers = try await SharedRealServers.shared.validating()
        // vrules validates itself (Unbound is asked with CD), from the same anchors as Unbound.
        let records = try ZoneFile.parse(servers.unbound.trustAnchors.joined(separator: "\n"), origin: "")
        return DNSNetworkResolver(servers: [servers.unbound.address],
                                  options: DNSResolverOptions(timeout: .seconds(3), attempts: 0, validate: validate,
                                                              trustAnchors: DNSTrustAnchors(records: records)!))
    }

    @Test("answers from a correctly signed zone are secure")
    func secure() async throws {
        let resolver = try await self.resolver()
        let answer = try await resolver.resolve(DNSQuestion(name: "www.signed.test", type: .a)).get()
        #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.50")!)])
        #expect(answer.secure)
        let missing = try await resolver.resolve(DNSQuestion(name: "nothing.signed.test", type: .a)).get()
        #expect(missing.outcome == .nxdomain)
        #expect(missing.secure)
    }

    @Test("an unsigned zone is answered through the validator and is not secure")
    func insecureZone() async throws {
        let resolver = try await self.resolver()
        let answer = try await resolver.resolve(DNSQuestion(name: "host.vrules.test", type: .a)).get()
        #expect(answer.records.map(\.data) == [.a(IPAddress("192.0.2.10")!)])
        #expect(!answer.secure)
        // A truncated reply from Unbound is fetched over TCP as well.
        let big = try await resolver.resolve(DNSQuestion(name: "big.vrules.test", type: .txt)).get()
        #expect(big.records.count == 10)
    }

    @Test("without validate the same answer is not reported secure")
    func notValidating() async throws {
        let resolver = try await self.resolver(validate: false)
        let answer = try await resolver.resolve(DNSQuestion(name: "www.signed.test", type: .a)).get()
        #expect(!answer.secure)
    }

    @Test("a broken signature surfaces as a transient bogus failure")
    func brokenSignature() async throws {
        let resolver = try await self.resolver()
        let result = await resolver.resolve(DNSQuestion(name: "www.broken.test", type: .a))
        #expect(errorKind(result) == .bogus, "\(result)")
        #expect(resolver.immediateResult(for: DNSQuestion(name: "www.broken.test", type: .a)) == nil)
        // The rest of the zone is still signed correctly.
        let other = try await resolver.resolve(DNSQuestion(name: "other.broken.test", type: .a)).get()
        #expect(other.secure)
    }
}
