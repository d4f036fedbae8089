import Foundation
import Testing
import VrulesTestSupport

/// `vrules dns ... --zone FILE`: the rule API's DNS functions answered from zone files, with
/// injected faults and delays, as `vrules run --zone` and a test's fixtures answer them.
@Suite("vrules dns --zone")
struct DNSZoneCommandTests {
    static let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path

    @Test("each function answers from the zone: the questions asked, their records and the result")
    func answers() throws {
        let lookup = try CLI.run(["dns", "lookup", "mail.good.example", "--zone", Self.zone])
        #expect(lookup.status == 0, "\(lookup.stderr)")
        #expect(lookup.stdout.hasPrefix(";; lookup mail.good.example (ip_strategy Ipv4thenIpv6; zone \(Self.zone))\n"), "\(lookup.stdout)")
        #expect(lookup.stdout.contains("mail.good.example/A  ok  insecure  from zone  0.0 ms\n    mail.good.example. 300 IN A 192.0.2.10\n"))
        #expect(lookup.stdout.contains("\nlookup: ok\n  192.0.2.10\n;; "), "Ipv4thenIpv6: no AAAA asked: \(lookup.stdout)")
        #expect(!lookup.stdout.contains("cache"), "a zone's answers are not a cache's")

        let mx = try CLI.run(["dns", "mx", "alias.example", "--zone", Self.zone])
        #expect(mx.stdout.contains("alias.example/MX  ok  insecure  from zone"), "\(mx.stdout)")
        #expect(mx.stdout.contains("alias.example. 300 IN CNAME good.example."), "the CNAME followed")
        #expect(mx.stdout.contains("\nmx: mx\n"))

        let iprev = try CLI.run(["dns", "iprev", "192.0.2.66", "--zone", Self.zone])
        #expect(iprev.status == 0)
        #expect(iprev.stdout.contains("liar.example/A  ok"), "\(iprev.stdout)")
        #expect(iprev.stdout.contains("\niprev: fail\n"))

        let nodata = try CLI.run(["dns", "query", "implicit.example", "MX", "--zone", Self.zone, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(nodata.stdout.utf8)) as? [String: Any])
        #expect(object["zones"] as? [String] == [Self.zone])
        #expect(object["servers"] == nil)
        #expect((object["result"] as? [String: Any])?["outcome"] as? String == "nodata")
        let query = try #require((object["queries"] as? [[String: Any]])?.first)
        #expect(query["server"] as? String == "zone")
        #expect(query["cache"] as? Bool == false)
    }

    @Test("faults and delays: a timeout is a failed command (exit 1), a delay shows in the timing")
    func faultsAndDelays() throws {
        let timeout = try CLI.run(["dns", "mx", "good.example", "--zone", Self.zone, "--fault", "good.example=timeout"])
        #expect(timeout.status == 1)
        #expect(timeout.stdout.contains("\nmx: error timeout indeterminate\n"), "\(timeout.stdout)")
        #expect(timeout.stdout.contains("DNS timeout for good.example/MX: injected fault"))

        let servfail = try CLI.run(["dns", "spf", "192.0.2.10", "a@good.example", "--zone", Self.zone,
                                    "--fault", "good.example=servfail"])
        #expect(servfail.status == 1)
        #expect(servfail.stdout.contains("\nspf: temperror\n"), "\(servfail.stdout)")

        let delayed = try CLI.run(["dns", "lookup", "liar.example", "--zone", Self.zone, "--delay", "40ms", "--json"])
        #expect(delayed.status == 0, "\(delayed.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(delayed.stdout.utf8)) as? [String: Any])
        let first = try #require((object["queries"] as? [[String: Any]])?.first)
        #expect((first["milliseconds"] as? Double ?? 0) >= 40, "\(first)")
    }

    @Test("what --zone cannot be given with, and zone files that do not load, are refused by name (exit 2)")
    func refusals() throws {
        let directory = try CLI.scratch([
            "include.zone": "$INCLUDE /etc/passwd\n",
            "broken.zone": "a.example. 300 IN A 192.0.2.300\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [([String], String)] = [
            (["dns", "lookup", "a.example", "--fault", "a.example=timeout"], "--fault and --delay need --zone"),
            (["dns", "lookup", "a.example", "--zone", Self.zone, "--fault", "a.example=slow"], "unknown fault 'slow'"),
            (["dns", "lookup", "a.example", "--zone", Self.zone, "--delay", "soon"], "--delay: "),
            (["dns", "lookup", "a.example", "--zone", Self.zone, "--trace"], "--trace shows the network resolver's chain of trust"),
            (["dns", "mx", "a.example", "--zone", Self.zone, "--domain", "a.example"], "--domain picks one of the configured resolvers"),
            (["dns", "lookup", "a.example", "--zone", "missing.zone"], "missing.zone: cannot read"),
            (["dns", "lookup", "a.example", "--zone", "include.zone"], "include.zone:1: $INCLUDE is not supported"),
            (["dns", "lookup", "a.example", "--zone", "broken.zone"], "broken.zone:1:"),
        ]
        for (arguments, message) in cases {
            let output = try CLI.run(arguments, in: directory)
            #expect(output.status == 2, "\(arguments): \(output.status) \(output.stderr)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
            #expect(output.stdout.isEmpty, "\(arguments)")
        }
    }
}
