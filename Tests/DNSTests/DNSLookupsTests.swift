import Testing

@testable import DNS

// MARK: - dns.lookup

@Suite("AddressLookup")
struct AddressLookupTests {
    static let zone = """
        $ORIGIN example.com.
        both   A     192.0.2.1
        both   A     192.0.2.2
        both   AAAA  2001:db8::1
        v4     A     192.0.2.10
        v6     AAAA  2001:db8::10
        none   TXT   "no addresses"
        alias  CNAME both
        """

    struct Case: CustomTestStringConvertible, Sendable {
        var strategy: IPStrategy
        var name: String
        var addresses: [String]
        var outcome: DNSOutcome
        /// The types asked, in order.
        var asked: [DNSRecordType]
        var testDescription: String { "\(self.strategy.rawValue) \(self.name)" }
    }

    static let cases: [Case] = [
        Case(strategy: .ipv4Only, name: "both", addresses: ["192.0.2.1", "192.0.2.2"], outcome: .ok, asked: [.a]),
        Case(strategy: .ipv4Only, name: "v6", addresses: [], outcome: .nodata, asked: [.a]),
        Case(strategy: .ipv6Only, name: "both", addresses: ["2001:db8::1"], outcome: .ok, asked: [.aaaa]),
        Case(strategy: .ipv6Only, name: "v4", addresses: [], outcome: .nodata, asked: [.aaaa]),
        Case(strategy: .ipv4AndIpv6, name: "both", addresses: ["192.0.2.1", "192.0.2.2", "2001:db8::1"], outcome: .ok, asked: [.a, .aaaa]),
        Case(strategy: .ipv4AndIpv6, name: "v6", addresses: ["2001:db8::10"], outcome: .ok, asked: [.a, .aaaa]),
        Case(strategy: .ipv4ThenIpv6, name: "both", addresses: ["192.0.2.1", "192.0.2.2"], outcome: .ok, asked: [.a]),
        Case(strategy: .ipv4ThenIpv6, name: "v6", addresses: ["2001:db8::10"], outcome: .ok, asked: [.a, .aaaa]),
        Case(strategy: .ipv6ThenIpv4, name: "both", addresses: ["2001:db8::1"], outcome: .ok, asked: [.aaaa]),
        Case(strategy: .ipv6ThenIpv4, name: "v4", addresses: ["192.0.2.10"], outcome: .ok, asked: [.aaaa, .a]),
        Case(strategy: .ipv4ThenIpv6, name: "alias", addresses: ["192.0.2.1", "192.0.2.2"], outcome: .ok, asked: [.a]),
        Case(strategy: .ipv4ThenIpv6, name: "none", addresses: [], outcome: .nodata, asked: [.a, .aaaa]),
        Case(strategy: .ipv4AndIpv6, name: "none", addresses: [], outcome: .nodata, asked: [.a, .aaaa]),
        Case(strategy: .ipv6Only, name: "missing", addresses: [], outcome: .nxdomain, asked: [.aaaa]),
        Case(strategy: .ipv4ThenIpv6, name: "missing", addresses: [], outcome: .nxdomain, asked: [.a, .aaaa]),
        Case(strategy: .ipv4AndIpv6, name: "missing", addresses: [], outcome: .nxdomain, asked: [.a, .aaaa]),
    ]

    @Test(arguments: Self.cases, Driver.allCases)
    func followsTheStrategy(_ test: Case, _ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let name = "\(test.name).example.com"
        let result = try #require(expectSuccess(await driver.drive(AddressLookup(name: name, strategy: test.strategy), on: resolver)))
        #expect(result.addresses == test.addresses.map(ip))
        #expect(result.outcome == test.outcome)
        #expect(resolver.askedQuestions == test.asked.map { DNSQuestion(name: name, type: $0) })
    }

    @Test func bothFamiliesAreAskedInOneStep() {
        var plan = AddressLookup(name: "both.example.com", strategy: .ipv4AndIpv6)
        guard case .need(let questions) = plan.start() else {
            Issue.record("expected questions")
            return
        }
        #expect(questions == [DNSQuestion(name: "both.example.com", type: .a), DNSQuestion(name: "both.example.com", type: .aaaa)])
    }

    @Test func theSecondFamilyIsAskedInItsOwnStep() throws {
        var plan = AddressLookup(name: "v6.example.com", strategy: .ipv4ThenIpv6)
        guard case .need(let first) = plan.start() else { throw TestFailure("expected questions") }
        #expect(first == [DNSQuestion(name: "v6.example.com", type: .a)])
        let nodata = DNSQueryResult.success(DNSAnswer(name: "v6.example.com", type: .a, outcome: .nodata))
        guard case .need(let second) = plan.resume(with: [nodata]) else { throw TestFailure("expected a second question") }
        #expect(second == [DNSQuestion(name: "v6.example.com", type: .aaaa)])
        let answer = DNSQueryResult.success(DNSAnswer(
            name: "v6.example.com", type: .aaaa, outcome: .ok,
            records: [DNSRecord(name: "v6.example.com", ttl: 1, data: .aaaa(ip("2001:db8::10")))]))
        guard case .done(let output) = plan.resume(with: [answer]) else { throw TestFailure("expected the result") }
        #expect(try output.get() == AddressLookupResult(addresses: [ip("2001:db8::10")], outcome: .ok))
    }

    struct FaultCase: CustomTestStringConvertible, Sendable {
        var strategy: IPStrategy
        var name: String
        var failing: DNSRecordType
        /// Nil: the lookup fails with the injected timeout.
        var addresses: [String]?
        var testDescription: String { "\(self.strategy.rawValue) \(self.name), \(self.failing) times out" }
    }

    static let faultCases: [FaultCase] = [
        FaultCase(strategy: .ipv4ThenIpv6, name: "both", failing: .a, addresses: ["2001:db8::1"]),
        FaultCase(strategy: .ipv4ThenIpv6, name: "v4", failing: .a, addresses: nil),
        FaultCase(strategy: .ipv4ThenIpv6, name: "missing", failing: .aaaa, addresses: nil),
        FaultCase(strategy: .ipv4ThenIpv6, name: "both", failing: .aaaa, addresses: ["192.0.2.1", "192.0.2.2"]),
        FaultCase(strategy: .ipv6ThenIpv4, name: "both", failing: .aaaa, addresses: ["192.0.2.1", "192.0.2.2"]),
        FaultCase(strategy: .ipv6ThenIpv4, name: "v6", failing: .aaaa, addresses: nil),
        FaultCase(strategy: .ipv4AndIpv6, name: "both", failing: .aaaa, addresses: ["192.0.2.1", "192.0.2.2"]),
        FaultCase(strategy: .ipv4AndIpv6, name: "both", failing: .a, addresses: ["2001:db8::1"]),
        FaultCase(strategy: .ipv4AndIpv6, name: "v4", failing: .aaaa, addresses: ["192.0.2.10"]),
        FaultCase(strategy: .ipv4AndIpv6, name: "v6", failing: .aaaa, addresses: nil),
        FaultCase(strategy: .ipv4AndIpv6, name: "none", failing: .a, addresses: nil),
        FaultCase(strategy: .ipv4Only, name: "both", failing: .a, addresses: nil),
        FaultCase(strategy: .ipv6Only, name: "both", failing: .aaaa, addresses: nil),
        FaultCase(strategy: .ipv4Only, name: "both", failing: .aaaa, addresses: ["192.0.2.1", "192.0.2.2"]),
    ]

    @Test(arguments: Self.faultCases, Driver.allCases)
    func aFailureSurfacesOnlyWithoutAddresses(_ test: FaultCase, _ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let name = "\(test.name).example.com"
        resolver.setFault(.timeout, for: name, type: test.failing)
        let result = await driver.drive(AddressLookup(name: name, strategy: test.strategy), on: resolver)
        if let addresses = test.addresses {
            let found = try #require(expectSuccess(result))
            #expect(found == AddressLookupResult(addresses: addresses.map(ip), outcome: .ok))
        } else {
            let error = try #require(expectFailure(result))
            #expect(error.kind == .timeout)
            #expect(error.name == name)
            #expect(error.type == test.failing)
        }
    }

    @Test func theFirstFailureIsReportedWhenBothFamiliesFail() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.setFault(.servfail, for: "both.example.com", type: .a)
        resolver.setFault(.refused, for: "both.example.com", type: .aaaa)
        for strategy in [IPStrategy.ipv4AndIpv6, .ipv4ThenIpv6] {
            let error = try #require(expectFailure(await resolver.run(AddressLookup(name: "both.example.com", strategy: strategy))))
            #expect(error.kind == .servfail)
        }
        let error = try #require(expectFailure(await resolver.run(AddressLookup(name: "both.example.com", strategy: .ipv6ThenIpv4))))
        #expect(error.kind == .refused)
    }

    @Test func aSlowResolverIsAwaited() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.delay = .milliseconds(5)
        var plan = AddressLookup(name: "v6.example.com", strategy: .ipv4ThenIpv6)
        let step = resolver.advanceImmediately(&plan, from: plan.start())
        guard case .need(let questions) = step else { throw TestFailure("a delayed answer must not be immediate") }
        #expect(questions == [DNSQuestion(name: "v6.example.com", type: .a)])
        let result = try #require(expectSuccess(await resolver.run(AddressLookup(name: "v6.example.com", strategy: .ipv4ThenIpv6))))
        #expect(result.addresses == [ip("2001:db8::10")])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - dns.rlookup

@Suite("ReverseLookup")
struct ReverseLookupTests {
    static let zone = """
        $ORIGIN in-addr.arpa.
        1.2.0.192   PTR  mail.example.com.
        1.2.0.192   PTR  smtp.example.com.
        5.2.0.192   TXT  "no PTR here"
        $ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.
        1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0   PTR   v6.example.com.
        """

    @Test func reverseNames() {
        #expect(ip("192.0.2.1").reverseName == "1.2.0.192.in-addr.arpa")
        #expect(ip("2001:db8::1").reverseName == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
        #expect(ip("2001:db8::abcd").reverseName.hasPrefix("d.c.b.a.0.0.0.0."))
    }

    @Test(arguments: Driver.allCases)
    func findsPTRNames(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let v4 = try #require(expectSuccess(await driver.drive(ReverseLookup(ip: ip("192.0.2.1")), on: resolver)))
        #expect(v4 == ReverseLookupResult(names: ["mail.example.com", "smtp.example.com"], outcome: .ok))
        let v6 = try #require(expectSuccess(await driver.drive(ReverseLookup(ip: ip("2001:db8::1")), on: resolver)))
        #expect(v6 == ReverseLookupResult(names: ["v6.example.com"], outcome: .ok))
        #expect(resolver.askedQuestions == [
            DNSQuestion(name: "1.2.0.192.in-addr.arpa", type: .ptr),
            DNSQuestion(name: ip("2001:db8::1").reverseName, type: .ptr),
        ])
    }

    @Test(arguments: Driver.allCases)
    func noPTRIsAnAnswer(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let missing = try #require(expectSuccess(await driver.drive(ReverseLookup(ip: ip("192.0.2.9")), on: resolver)))
        #expect(missing == ReverseLookupResult(names: [], outcome: .nxdomain))
        let nodata = try #require(expectSuccess(await driver.drive(ReverseLookup(ip: ip("192.0.2.5")), on: resolver)))
        #expect(nodata == ReverseLookupResult(names: [], outcome: .nodata))
        let v6 = try #require(expectSuccess(await driver.drive(ReverseLookup(ip: ip("2001:db8::2")), on: resolver)))
        #expect(v6 == ReverseLookupResult(names: [], outcome: .nxdomain))
    }

    @Test func aFailureIsAnError() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.setFault(.servfail, for: "1.2.0.192.in-addr.arpa")
        let error = try #require(expectFailure(await resolver.run(ReverseLookup(ip: ip("192.0.2.1")))))
        #expect(error.kind == .servfail)
        #expect(error.type == .ptr)
    }
}

// MARK: - dns.locate_mx

@Suite("MXLocation")
struct MXLocationTests {
    static let zone = """
        $ORIGIN example.com.
        sorted      MX   20 b
        sorted      MX   10 a
        sorted      MX   30 c.example.net.
        equal       MX   5  first
        equal       MX   10 x
        equal       MX   10 y
        equal       MX   10 z
        equal       MX   20 last
        null        MX   0  .
        nullmixed   MX   0  .
        nullmixed   MX   10 mail
        nullonly10  MX   10 .
        implicit4   A    192.0.2.1
        implicit6   AAAA 2001:db8::1
        txtonly     TXT  "no mail here"
        alias       CNAME real
        real        A    192.0.2.2
        mxalias     CNAME mxtarget
        mxtarget    MX   10 mail
        """

    func hosts(_ route: MXRoute) -> [String] {
        route.hosts.map(\.host)
    }

    @Test(arguments: Driver.allCases)
    func sortsByPreference(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let route = try #require(expectSuccess(await driver.drive(MXLocation(domain: "sorted.example.com"), on: resolver)))
        #expect(route == MXRoute(kind: .mx, hosts: [
            MXHost(host: "a.example.com", preference: 10),
            MXHost(host: "b.example.com", preference: 20),
            MXHost(host: "c.example.net", preference: 30),
        ]))
    }

    @Test func shufflesEqualPreferences() async throws {
        let resolver = try makeResolver(Self.zone)
        var orders: Set<[String]> = []
        for _ in 0..<300 {
            let route = try #require(expectSuccess(await resolver.run(MXLocation(domain: "equal.example.com"))))
            #expect(route.kind == .mx)
            #expect(route.hosts.map(\.preference) == [5, 10, 10, 10, 20])
            let hosts = self.hosts(route)
            #expect(hosts.first == "first.example.com")
            #expect(hosts.last == "last.example.com")
            orders.insert(Array(hosts[1...3]))
        }
        // All six orders of x, y, z: missing one in 300 fair shuffles has a chance below 1e-22.
        #expect(orders.count == 6)
    }

    @Test func aSeededGeneratorIsRepeatable() async throws {
        let resolver = try makeResolver(Self.zone)
        var orders: Set<[String]> = []
        for seed in UInt64(0)..<40 {
            let first = try #require(expectSuccess(await resolver.run(MXLocation(domain: "equal.example.com", seed: seed))))
            let again = try #require(expectSuccess(await resolver.run(MXLocation(domain: "equal.example.com", seed: seed))))
            #expect(first == again)
            orders.insert(self.hosts(first))
        }
        #expect(orders.count > 1)
        let custom = try #require(expectSuccess(await resolver.run(
            MXLocation(domain: "equal.example.com", random: SplitMix64(seed: 7)))))
        let seeded = try #require(expectSuccess(await resolver.run(MXLocation(domain: "equal.example.com", seed: 7))))
        #expect(custom == seeded)
    }

    @Test(arguments: Driver.allCases)
    func nullMX(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let route = try #require(expectSuccess(await driver.drive(MXLocation(domain: "null.example.com"), on: resolver)))
        #expect(route == MXRoute(kind: .null, hosts: []))
        // No address lookups for a Null MX.
        #expect(resolver.askedQuestions == [DNSQuestion(name: "null.example.com", type: .mx)])
    }

    @Test(arguments: Driver.allCases)
    func aNullExchangeAmongOthersIsIgnored(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let mixed = try #require(expectSuccess(await driver.drive(MXLocation(domain: "nullmixed.example.com"), on: resolver)))
        #expect(mixed == MXRoute(kind: .mx, hosts: [MXHost(host: "mail.example.com", preference: 10)]))
        let only = try #require(expectSuccess(await driver.drive(MXLocation(domain: "nullonly10.example.com"), on: resolver)))
        #expect(only == MXRoute(kind: .none, hosts: []))
    }

    @Test(arguments: ["implicit4", "implicit6"], Driver.allCases)
    func implicitMX(_ name: String, _ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let domain = "\(name).example.com"
        let route = try #require(expectSuccess(await driver.drive(MXLocation(domain: domain), on: resolver)))
        #expect(route == MXRoute(kind: .implicit, hosts: [MXHost(host: domain, preference: 0)]))
        #expect(resolver.askedQuestions == [
            DNSQuestion(name: domain, type: .mx), DNSQuestion(name: domain, type: .a), DNSQuestion(name: domain, type: .aaaa),
        ])
    }

    @Test(arguments: Driver.allCases)
    func aCNAMEdDomainUsesItsCanonicalName(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let implicit = try #require(expectSuccess(await driver.drive(MXLocation(domain: "alias.example.com"), on: resolver)))
        #expect(implicit == MXRoute(kind: .implicit, hosts: [MXHost(host: "real.example.com", preference: 0)]))
        #expect(resolver.askedQuestions.suffix(2) == [
            DNSQuestion(name: "real.example.com", type: .a), DNSQuestion(name: "real.example.com", type: .aaaa),
        ])
        let mx = try #require(expectSuccess(await driver.drive(MXLocation(domain: "mxalias.example.com"), on: resolver)))
        #expect(mx == MXRoute(kind: .mx, hosts: [MXHost(host: "mail.example.com", preference: 10)]))
    }

    @Test(arguments: ["missing", "txtonly"], Driver.allCases)
    func noRoute(_ name: String, _ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let route = try #require(expectSuccess(await driver.drive(MXLocation(domain: "\(name).example.com"), on: resolver)))
        #expect(route == MXRoute(kind: .none, hosts: []))
    }

    @Test func nxdomainAsksNothingMore() async throws {
        let resolver = try makeResolver(Self.zone)
        _ = await resolver.run(MXLocation(domain: "missing.example.com"))
        #expect(resolver.askedQuestions == [DNSQuestion(name: "missing.example.com", type: .mx)])
    }

    @Test func transientFailuresAreErrors() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.setFault(.timeout, for: "sorted.example.com")
        let mx = try #require(expectFailure(await resolver.run(MXLocation(domain: "sorted.example.com"))))
        #expect(mx.kind == .timeout)
        #expect(mx.type == .mx)

        // NODATA for MX, then the address lookups fail and find nothing.
        resolver.setFault(.servfail, for: "txtonly.example.com", type: .a)
        let address = try #require(expectFailure(await resolver.run(MXLocation(domain: "txtonly.example.com"))))
        #expect(address.kind == .servfail)
        #expect(address.type == .a)

        // One family failing does not hide the other's addresses.
        resolver.setFault(.timeout, for: "implicit4.example.com", type: .aaaa)
        let implicit = try #require(expectSuccess(await resolver.run(MXLocation(domain: "implicit4.example.com"))))
        #expect(implicit.kind == .implicit)
    }
}

// MARK: - dns.iprev

@Suite("IprevCheck")
struct IprevCheckTests {
    static let zone = """
        $ORIGIN example.com.
        1.2.0.192.in-addr.arpa.   PTR  pass.example.com.
        2.2.0.192.in-addr.arpa.   PTR  other.example.com.
        3.2.0.192.in-addr.arpa.   PTR  ghost.example.com.
        4.2.0.192.in-addr.arpa.   TXT  "no PTR"
        5.2.0.192.in-addr.arpa.   PTR  slow.example.com.
        6.2.0.192.in-addr.arpa.   PTR  slow.example.com.
        6.2.0.192.in-addr.arpa.   PTR  second.example.com.
        7.2.0.192.in-addr.arpa.   PTR  v6only.example.com.
        pass      A     192.0.2.1
        other     A     192.0.2.99
        slow      A     192.0.2.99
        second    A     192.0.2.6
        v6only    AAAA  2001:db8::7
        $ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.
        1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0   PTR  pass6.example.com.
        2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0   PTR  other.example.com.
        3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0   PTR  ghost.example.com.
        5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0   PTR  slow6.example.com.
        $ORIGIN example.com.
        pass6     AAAA  2001:db8::1
        pass6     A     192.0.2.1
        other     AAAA  2001:db8::99
        slow6     AAAA  2001:db8::99
        """

    struct Case: CustomTestStringConvertible, Sendable {
        var ip: String
        var status: IprevResult.Status
        var name: String? = nil
        /// A name to make time out.
        var timeout: String? = nil
        var testDescription: String {
            "\(self.ip) → \(self.status.rawValue)" + (self.timeout.map { " (\($0) times out)" } ?? "")
        }
    }

    static let cases: [Case] = [
        Case(ip: "192.0.2.1", status: .pass, name: "pass.example.com"),
        Case(ip: "192.0.2.2", status: .fail),
        Case(ip: "192.0.2.3", status: .fail),  // the forward name does not exist
        Case(ip: "192.0.2.4", status: .permerror),  // NODATA
        Case(ip: "192.0.2.9", status: .permerror),  // NXDOMAIN
        Case(ip: "192.0.2.7", status: .fail),  // only the other family confirms
        Case(ip: "192.0.2.1", status: .temperror, timeout: "1.2.0.192.in-addr.arpa"),
        Case(ip: "192.0.2.5", status: .temperror, timeout: "slow.example.com"),
        Case(ip: "192.0.2.6", status: .pass, name: "second.example.com"),
        Case(ip: "192.0.2.6", status: .pass, name: "second.example.com", timeout: "slow.example.com"),
        Case(ip: "2001:db8::1", status: .pass, name: "pass6.example.com"),
        Case(ip: "2001:db8::2", status: .fail),
        Case(ip: "2001:db8::3", status: .fail),
        Case(ip: "2001:db8::4", status: .permerror),
        Case(ip: "2001:db8::1", status: .temperror, timeout: ip("2001:db8::1").reverseName),
        Case(ip: "2001:db8::5", status: .temperror, timeout: "slow6.example.com"),
    ]

    @Test(arguments: Self.cases, Driver.allCases)
    func status(_ test: Case, _ driver: Driver) async throws {
        // The resolver's own strategy must not matter: iprev asks the IP's family.
        let resolver = try makeResolver(Self.zone, ipStrategy: test.ip.contains(":") ? .ipv4Only : .ipv6Only)
        if let timeout = test.timeout { resolver.setFault(.timeout, for: timeout) }
        let result = try #require(await driver.drive(IprevCheck(ip: ip(test.ip)), on: resolver))
        #expect(result == IprevResult(status: test.status, name: test.name))
    }

    @Test func asksOnlyTheIPsFamilyAllAtOnce() throws {
        var plan = IprevCheck(ip: ip("2001:db8::1"))
        guard case .need(let ptr) = plan.start() else { throw TestFailure("expected the PTR question") }
        #expect(ptr == [DNSQuestion(name: ip("2001:db8::1").reverseName, type: .ptr)])
        let names = ["a.example", "b.example", "c.example"]
        let answer = DNSAnswer(name: ptr[0].name, type: .ptr, outcome: .ok,
                               records: names.map { DNSRecord(name: ptr[0].name, ttl: 1, data: .ptr($0)) })
        guard case .need(let forward) = plan.resume(with: [.success(answer)]) else { throw TestFailure("expected forward questions") }
        #expect(forward == names.map { DNSQuestion(name: $0, type: .aaaa) })
    }

    /// 11 PTR names; `matching` is the 1-based position of the one whose A record is the IP.
    func manyNamesResolver(matching: Int) throws -> ZoneResolver {
        var text = "$ORIGIN example.com.\n"
        for index in 1...11 {
            text += "1.2.0.192.in-addr.arpa. PTR n\(index)\n"
            text += "n\(index) A \(index == matching ? "192.0.2.1" : "198.51.100.\(index)")\n"
        }
        return try makeResolver(text)
    }

    @Test(arguments: Driver.allCases)
    func examinesAtMostTenNames(_ driver: Driver) async throws {
        let tenth = try self.manyNamesResolver(matching: 10)
        #expect(try #require(await driver.drive(IprevCheck(ip: ip("192.0.2.1")), on: tenth))
            == IprevResult(status: .pass, name: "n10.example.com"))

        let eleventh = try self.manyNamesResolver(matching: 11)
        #expect(try #require(await driver.drive(IprevCheck(ip: ip("192.0.2.1")), on: eleventh))
            == IprevResult(status: .fail))
        #expect(eleventh.questionCount == 11)  // one PTR, ten A
        #expect(!eleventh.askedQuestions.contains(DNSQuestion(name: "n11.example.com", type: .a)))
        #expect(IprevCheck.maximumNames == 10)
    }

    @Test func aSlowResolverIsAwaited() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.setFault(.delay(.milliseconds(5)), for: "pass.example.com")
        var plan = IprevCheck(ip: ip("192.0.2.1"))
        // The PTR answer is immediate; the forward lookup is not.
        guard case .need(let questions) = resolver.advanceImmediately(&plan, from: plan.start()) else {
            throw TestFailure("a delayed answer must not be immediate")
        }
        #expect(questions == [DNSQuestion(name: "pass.example.com", type: .a)])
        let results = await resolver.resolveAll(questions)
        guard case .done(let result) = resolver.advanceImmediately(&plan, from: plan.resume(with: results)) else {
            throw TestFailure("expected the result")
        }
        #expect(result == IprevResult(status: .pass, name: "pass.example.com"))
    }
}

// MARK: - dns.query

@Suite("RecordQuery")
struct RecordQueryTests {
    static let zone = """
        $ORIGIN example.com.
        @      TXT   "v=spf1 -all"
        alias  CNAME @
        """

    @Test(arguments: Driver.allCases)
    func answersOneQuestionAsIs(_ driver: Driver) async throws {
        let resolver = try makeResolver(Self.zone)
        let direct = try #require(expectAnswer(await driver.drive(RecordQuery(name: "example.com", type: .txt), on: resolver)))
        #expect(direct.records.map(\.data) == [.txt([Array("v=spf1 -all".utf8)])])
        let viaAlias = try #require(expectAnswer(await driver.drive(RecordQuery(name: "alias.example.com", type: .txt), on: resolver)))
        #expect(viaAlias.name == "alias.example.com")
        #expect(viaAlias.chain.map(\.data) == [.cname("example.com")])
        #expect(viaAlias.records == direct.records)
        let none = try #require(expectAnswer(await driver.drive(RecordQuery(name: "example.com", type: .srv), on: resolver)))
        #expect(none.outcome == .nodata)
    }

    @Test func failuresPassThrough() async throws {
        let resolver = try makeResolver(Self.zone)
        resolver.setFault(.refused, for: "example.com")
        let error = try #require(expectFailure(await resolver.run(RecordQuery(name: "example.com", type: .txt))))
        #expect(error == DNSError(kind: .refused, name: "example.com", type: .txt, detail: "injected fault"))
    }
}
