import Foundation
import Testing
import VrulesTestSupport

/// `vrules dns spf`: the result spf.check gives a client and sender, through the network
/// resolver against Knot serving `Tests/Fixtures/spf/spf.test.zone` (the zone
/// SPFKnotTests checks the evaluator with), with every query the check made.
@Suite("vrules dns spf through Knot", .serialized)
struct SPFCommandTests {
    static func knot() throws -> ZoneRoutingTests.Knot {
        let zone = try String(contentsOf: CLI.packageRoot.appendingPathComponent("Tests/Fixtures/spf/spf.test.zone"), encoding: .utf8)
        return try ZoneRoutingTests.Knot(zones: ["spf.test": zone])
    }

    static func configuration(port: UInt16) -> String {
        """
        [server.dns]
        type = "custom"
        servers = ["127.0.0.1:\(port)"]

        [server.dns.options]
        timeout = "300ms"
        attempts = 0
        """
    }

    @Test("results with the term that decided, the explanation, the reason and the queries made")
    func results() throws {
        let knot = try Self.knot()
        let directory = try CLI.scratch(["vrules.toml": Self.configuration(port: knot.port)])
        defer { try? FileManager.default.removeItem(at: directory) }

        let pass = try CLI.run(["dns", "spf", "198.51.100.7", "alice@spf.test"], in: directory)
        #expect(pass.status == 0, "\(pass.stderr)")
        #expect(pass.stdout.contains("\nspf: pass\n"), "\(pass.stdout)")
        #expect(pass.stdout.contains("  domain: spf.test (mailfrom)"))
        #expect(pass.stdout.contains("  mechanism: ip4:198.51.100.0/24"))
        #expect(pass.stdout.contains("spf.test. 300 IN TXT \"v=spf1 ip4:198.51.100.0/24"), "the query made, with its record")

        let fail = try CLI.run(["dns", "spf", "192.0.2.99", "<bob@spf.test>"], in: directory)
        #expect(fail.status == 0, "a fail is a result, not a failed command: \(fail.stderr)")
        #expect(fail.stdout.contains("\nspf: fail\n"), "\(fail.stdout)")
        #expect(fail.stdout.contains("  mechanism: -all"))
        #expect(fail.stdout.contains("  explanation: 192.0.2.99 may not send for spf.test as bob (in-addr)"))

        let helo = try CLI.run(["dns", "spf", "192.0.2.99", "<>", "--helo", "soft.spf.test"], in: directory)
        #expect(helo.stdout.contains("spf 192.0.2.99 <postmaster@soft.spf.test>"), "\(helo.stdout)")
        #expect(helo.stdout.contains("\nspf: softfail\n"))
        #expect(helo.stdout.contains("  domain: soft.spf.test (helo)"))

        let permerror = try CLI.run(["dns", "spf", "192.0.2.99", "x@two.spf.test"], in: directory)
        #expect(permerror.status == 0)
        #expect(permerror.stdout.contains("\nspf: permerror\n"), "\(permerror.stdout)")
        #expect(permerror.stdout.contains("  reason: "))

        let none = try CLI.run(["dns", "spf", "192.0.2.99", "x@nothing.spf.test"], in: directory)
        #expect(none.stdout.contains("\nspf: none\n"), "\(none.stdout)")

        let json = try CLI.run(["dns", "spf", "--json", "192.0.2.99", "bob@spf.test"], in: directory)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let result = try #require(object["result"] as? [String: Any])
        #expect(result["result"] as? String == "fail")
        #expect(result["identity"] as? String == "mailfrom")
        #expect(result["mechanism"] as? String == "-all")
        #expect((object["queries"] as? [Any])?.isEmpty == false)
    }

    /// Knot serves spf.test alone and refuses the reverse names a `ptr` or `%{p}` asks, which
    /// the zone file answers NXDOMAIN; either way the `ptr` does not match (RFC 7208 §5.5), so the
    /// results agree, but the questions outside spf.test, and the weakest security seen, are left out.
    @Test("--zone on the zone file Knot serves gives the same results from the same questions and answers")
    func zoneFileAsKnot() throws {
        let knot = try Self.knot()
        let directory = try CLI.scratch(["vrules.toml": Self.configuration(port: knot.port)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("Tests/Fixtures/spf/spf.test.zone").path
        let checks = [["198.51.100.7", "alice@spf.test"], ["192.0.2.99", "<bob@spf.test>"], ["203.0.113.20", "c@spf.test"],
                      ["192.0.2.99", "<>", "--helo", "soft.spf.test"], ["192.0.2.99", "x@two.spf.test"],
                      ["192.0.2.99", "x@nothing.spf.test"], ["2001:db8:1::5", "d@spf.test"]]
        var results = Set<String>()
        for check in checks {
            let network = try CLI.run(["dns", "spf", "--json"] + check, in: directory)
            let offline = try CLI.run(["dns", "spf", "--json", "--zone", zone] + check, in: directory)
            #expect(network.status == offline.status, "\(check)")
            #expect(offline.stdout.contains("\"server\" : \"zone\"") && !offline.stdout.contains("\"server\" : \"127.0.0.1"),
                    "the zone file answered: \(check)")
            let (networkResult, networkQueries) = try Self.resultAndQueries(network.stdout)
            let (offlineResult, offlineQueries) = try Self.resultAndQueries(offline.stdout)
            #expect(networkResult == offlineResult, "\(check)")
            #expect(networkQueries == offlineQueries, "\(check)")
            results.insert(networkResult["result"] ?? "")
        }
        #expect(results == ["pass", "fail", "softfail", "permerror", "none"], "the checks cover five results: \(results)")
    }

    /// The result's fields, and each question with its outcome and records, from `--json`.
    static func resultAndQueries(_ json: String) throws -> ([String: String], [String]) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        var result = try #require(object["result"] as? [String: Any]).compactMapValues { $0 as? String }
        result["security"] = nil
        let queries = try #require(object["queries"] as? [[String: Any]]).filter {
            ($0["name"] as? String)?.hasSuffix("spf.test") == true
        }.map { query in
            let records = (query["records"] as? [[String: Any]] ?? []).map { "\($0["type"] ?? "") \($0["data"] ?? "")" }
            return "\(query["name"] ?? "")/\(query["type"] ?? "") \(query["outcome"] ?? query["error"] ?? "") \(records.sorted())"
        }
        return (result, queries)
    }

    @Test("a sender's control characters reach no output line raw; DNS trouble is temperror and exit status 1")
    func hostileAndFailing() throws {
        let knot = try Self.knot()
        let directory = try CLI.scratch(["vrules.toml": Self.configuration(port: knot.port)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let hostile = try CLI.run(["dns", "spf", "192.0.2.99", "bob\r\nRCPT TO:<x>@spf.test"], in: directory)
        #expect(hostile.stdout.contains("\nspf: fail\n"), "\(hostile.stdout)")
        #expect(!hostile.stdout.contains("\r"))
        #expect(!hostile.stdout.split(separator: "\n").contains { $0.hasPrefix("RCPT") })
        #expect(hostile.stdout.contains("  explanation: 192.0.2.99 may not send for spf.test as bobRCPT TO:<x> (in-addr)"))

        let silent = try DNSBLNetworkTests.SilentServer()
        let down = try CLI.scratch(["vrules.toml": Self.configuration(port: silent.port)])
        defer { try? FileManager.default.removeItem(at: down) }
        let temperror = try CLI.run(["dns", "spf", "192.0.2.99", "bob@spf.test"], in: down)
        #expect(temperror.status == 1)
        #expect(temperror.stdout.contains("\nspf: temperror\n"), "\(temperror.stdout)")
        #expect(temperror.stdout.contains("  reason: "))
    }

    @Test("usage errors name what is wrong")
    func usageErrors() throws {
        let directory = try CLI.scratch(["vrules.toml": Self.configuration(port: 9)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let noHelo = try CLI.run(["dns", "spf", "192.0.2.1", "<>"], in: directory)
        #expect(noHelo.status != 0)
        #expect(noHelo.stderr.contains("the null reverse-path has no domain to check: give the HELO name with --helo"), "\(noHelo.stderr)")
        let badIP = try CLI.run(["dns", "spf", "192.0.2.300", "a@spf.test"], in: directory)
        #expect(badIP.status != 0)
        #expect(badIP.stderr.contains("'192.0.2.300' is not an IPv4 or IPv6 address"), "\(badIP.stderr)")
        let missing = try CLI.run(["dns", "spf", "192.0.2.1"], in: directory)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("mail-from"), "\(missing.stderr)")
    }
}
