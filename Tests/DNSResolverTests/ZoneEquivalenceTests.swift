import DNS
import DNSTestSupport
import Testing
@testable import DNSResolver

/// The same zone data answered by `ZoneResolver` (in memory) and by the network resolver
/// (through `ScriptedDNSServer.authoritative`) gives the same results to every lookup plan:
/// the rule engine's DNS semantics do not depend on which resolver is plugged in.
@Suite("Zone resolver and network resolver agree")
struct ZoneEquivalenceTests {
    static func fixtureRecords() throws -> [DNSRecord] {
        var records: [DNSRecord] = []
        for zone in ["vrules.test", "2.0.192.in-addr.arpa", "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"] {
            records += try ZoneFile.load(path: RealServers.fixtures.appendingPathComponent("\(zone).zone").path)
        }
        return records
    }

    static let names = ["host.vrules.test", "dual.vrules.test", "v4only.vrules.test", "v6only.vrules.test",
                        "alias.vrules.test", "dangling.vrules.test", "nothing.vrules.test", "mail.vrules.test",
                        "nullmx.vrules.test", "implicit.vrules.test", "vrules.test"]
    static let ips = ["192.0.2.10", "192.0.2.11", "192.0.2.66", "192.0.2.200", "2001:db8::10", "2001:db8::99"]

    @Test("addresses, MX, PTR, iprev and record queries", arguments: IPStrategy.allCases)
    func equivalent(strategy: IPStrategy) async throws {
        let records = try Self.fixtureRecords()
        let zone = ZoneResolver(records: records, ipStrategy: strategy)
        try await withServers([ScriptedDNSServer.authoritative(records: records)]) { servers in
            var opts = options()
            opts.ipStrategy = strategy
            let network = DNSNetworkResolver(servers: [servers[0].address], options: opts)
            for name in Self.names {
                let fromZone = await zone.run(AddressLookup(name: name, strategy: strategy))
                let fromNetwork = await network.run(AddressLookup(name: name, strategy: network.ipStrategy))
                #expect(fromZone == fromNetwork, "lookup \(name)")
                let mxZone = await zone.run(MXLocation(domain: name, seed: 7))
                let mxNetwork = await network.run(MXLocation(domain: name, seed: 7))
                #expect(mxZone == mxNetwork, "mx \(name)")
                for type in [DNSRecordType.a, .aaaa, .mx, .txt, .cname, .srv, .soa] {
                    let a = await zone.run(RecordQuery(name: name, type: type))
                    let b = await network.run(RecordQuery(name: name, type: type))
                    #expect(Self.comparable(a) == Self.comparable(b), "query \(name) \(type)")
                }
            }
            for text in Self.ips {
                let ip = IPAddress(text)!
                let ptrZone = await zone.run(ReverseLookup(ip: ip))
                let ptrNetwork = await network.run(ReverseLookup(ip: ip))
                #expect(ptrZone == ptrNetwork, "rlookup \(text)")
                let iprevZone = await zone.run(IprevCheck(ip: ip))
                let iprevNetwork = await network.run(IprevCheck(ip: ip))
                #expect(iprevZone == iprevNetwork, "iprev \(text)")
            }
        }
    }

    /// What a rule sees of a record query: outcome, records and chain (not the server name).
    static func comparable(_ result: DNSQueryResult) -> String {
        switch result {
        case .success(let answer):
            return "\(answer.outcome) \(answer.records.map { "\($0.name) \($0.ttl) \($0.data)" }) \(answer.chain.map(\.name))"
        case .failure(let error):
            return "error \(error.kind)"
        }
    }
}
