import DNS
import Foundation
import Testing
import VrulesTestSupport
@testable import DNSResolver

/// `SPFCheck` through the network resolver against Knot DNS serving
/// `Tests/Fixtures/spf/spf.test.zone`, beside the zone-file resolver reading the same file:
/// one implementation over the resolver protocol gives the same answers from both.
@Suite("SPF against Knot DNS")
struct SPFKnotTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/spf")
    static let zones = ["spf.test", "113.0.203.in-addr.arpa"]

    /// (client IP, sender, expected result, expected mechanism)
    static let cases: [(String, String, SPFResult.Kind, String?)] = [
        ("198.51.100.9", "a@spf.test", .pass, "ip4:198.51.100.0/24"),
        ("2001:db8:1::5", "a@spf.test", .pass, "include:inc.spf.test"),
        ("203.0.113.6", "a@spf.test", .pass, "a:host.spf.test/30"),
        ("203.0.113.20", "a@spf.test", .pass, "mx//64"),
        ("2001:db8:2::ffff", "a@spf.test", .pass, "mx//64"),
        ("203.0.113.77", "a@spf.test", .pass, "exists:%{ir}.allow.spf.test"),
        ("203.0.113.8", "a@spf.test", .pass, "ptr:spf.test"),
        ("192.0.2.99", "bob@spf.test", .fail, "-all"),
        ("192.0.2.99", "a@redir.spf.test", .fail, "-all"),
        ("192.0.2.99", "a@loop.spf.test", .permerror, nil),
        ("192.0.2.99", "a@two.spf.test", .permerror, nil),
        ("192.0.2.99", "a@soft.spf.test", .softfail, "~all"),
        ("192.0.2.99", "a@void.spf.test", .permerror, nil),
        ("192.0.2.99", "a@broken.spf.test", .permerror, nil),
        ("192.0.2.99", "a@nothing.spf.test", .none, nil),
        ("203.0.113.9", "a@pmacro.spf.test", .pass, "exists:%{p}.named.spf.test"),
        ("192.0.2.99", "a@pmacro.spf.test", .fail, "-all"),
    ]

    @Test("the network resolver and the zone-file resolver give the same SPF results")
    func sameResultsAsZoneFile() async throws {
        let knot = try await onOwnThread { () -> Result<KnotServer, Error> in
            Result { try KnotServer(zones: Self.zones.map { ($0, Self.fixtures.appendingPathComponent("\($0).zone")) }) }
        }.get()
        defer { knot.stop() }
        let network = DNSNetworkResolver(servers: [knot.address],
                                         options: DNSResolverOptions(timeout: .seconds(2), attempts: 1))
        var records: [DNSRecord] = []
        for zone in Self.zones {
            let text = try String(contentsOf: Self.fixtures.appendingPathComponent("\(zone).zone"), encoding: .utf8)
            records += try ZoneFile.parse(text, origin: zone)
        }
        let zoneResolver = ZoneResolver(records: records)
        for (ip, sender, expected, mechanism) in Self.cases {
            let identity = SPFCheck.identity(mailFrom: sender, helo: "mail.example.org")
            let check = SPFCheck(ip: IPAddress(ip)!, domain: identity.domain, sender: identity.sender,
                                 helo: "mail.example.org")
            let fromKnot = await network.run(check)
            let fromZone = await zoneResolver.run(check)
            #expect(fromKnot == fromZone, "\(ip) \(sender)")
            #expect(fromKnot.result == expected, "\(ip) \(sender): \(fromKnot.reason ?? "")")
            #expect(fromKnot.mechanism == mechanism, "\(ip) \(sender)")
        }
        let fail = await network.run(SPFCheck(ip: IPAddress("192.0.2.99")!, domain: "spf.test",
                                              sender: "bob@spf.test", helo: nil))
        #expect(fail.result == .fail)
        #expect(fail.explanation == "192.0.2.99 may not send for spf.test as bob (in-addr)")
    }
}
