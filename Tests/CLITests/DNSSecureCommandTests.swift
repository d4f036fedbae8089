import Foundation
import Testing
import VrulesTestSupport

/// DNSSEC through the command line: a rule deciding on `secure`, tested with `vrules test`
/// over `$DNSSEC`-marked fixtures and `dnssec` expectations; `vrules run` on a bogus name.
@Suite("vrules test and vrules run with DNSSEC-marked zones")
struct DNSSecureCommandTests {
    static let rules = """
        return {
          mail = {
            rule("sender domain must be signed", function(ctx)
              local route = dns.locate_mx(ctx.mail_from.domain)
              if route.secure then return accept() end
              return defer(reply(451, "4.7.5", "sender domain is not DNSSEC-signed"))
            end),
          },
        }
        """

    static let zone = """
        $ORIGIN signed.test.
        $DNSSEC secure
        @     MX 10 mail
        mail  A 192.0.2.25
        $ORIGIN plain.test.
        @     MX 10 mail
        mail  A 192.0.2.26
        $ORIGIN bad.test.
        $DNSSEC bogus "RRSIG expired 2026-11-20 for bad.test/MX"
        @     MX 10 mail
        $ORIGIN slow.test.
        $DNSSEC indeterminate "DNSKEY of slow.test could not be fetched"
        @     MX 10 mail
        """

    @Test("a rule accepting signed senders and deferring the others, with dnssec expectations")
    func ruleDecidesOnSecure() throws {
        let directory = try CLI.scratch([
            "rules/main.lua": Self.rules,
            "rules/tests/dnssec_test.lua": """
                return {
                  rules = "../main.lua",
                  zone = [[
                \(Self.zone)
                ]],
                  tests = {
                    { name = "signed", client_ip = "192.0.2.10", mail_from = "a@signed.test",
                      expect = { mail = "accept" }, dnssec = { ["signed.test/MX"] = "secure" } },
                    { name = "unsigned", client_ip = "192.0.2.10", mail_from = "a@plain.test",
                      expect = { mail = "451 4.7.5" }, dnssec = { ["PLAIN.test./mx"] = "insecure" } },
                    { name = "bogus", client_ip = "192.0.2.10", mail_from = "a@bad.test",
                      expect = { mail = "451 4.4.3" }, dnssec = { ["bad.test/MX"] = "bogus" } },
                    { name = "indeterminate", client_ip = "192.0.2.10", mail_from = "a@slow.test",
                      expect = { mail = "451 4.4.3" }, dnssec = { ["slow.test/MX"] = "indeterminate" } },
                    { name = "indeterminate shown on purpose", client_ip = "192.0.2.10", mail_from = "a@slow.test",
                      expect = { mail = "accept" } },
                    { name = "wrong status on purpose", client_ip = "192.0.2.10", mail_from = "a@plain.test",
                      expect = { mail = "defer" }, dnssec = { ["plain.test/MX"] = "secure", ["plain.test/A"] = "insecure" } },
                    { name = "bogus accepted on purpose", client_ip = "192.0.2.10", mail_from = "a@bad.test",
                      expect = { mail = "accept" } },
                  },
                }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["test", "rules/tests"], in: directory)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(output.status == 1, "\(output.stdout)\(output.stderr)")
        #expect(lines.contains("ok - rules/tests/dnssec_test.lua: signed"), "\(output.stdout)")
        #expect(lines.contains("ok - rules/tests/dnssec_test.lua: unsigned"))
        #expect(lines.contains("ok - rules/tests/dnssec_test.lua: bogus"))
        #expect(lines.contains("ok - rules/tests/dnssec_test.lua: indeterminate"))
        #expect(lines.contains { $0.hasSuffix("; dns: slow.test/MX servfail indeterminate (DNSKEY of slow.test could not be fetched)") },
                "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/dnssec_test.lua: wrong status on purpose"))
        #expect(lines.contains("    dnssec: plain.test/MX: expected secure, got insecure"))
        #expect(lines.contains("    dnssec: plain.test/A was never asked (asked: plain.test/MX)"))
        #expect(lines.contains(
            "    mail: expected accept, got defer 451 4.4.3 Directory server failure, try again later (rule \"sender domain must be signed\") "
            + "[rule 'sender domain must be signed': DNS bogus for bad.test/MX: RRSIG expired 2026-11-20 for bad.test/MX]; "
            + "dns: bad.test/MX bogus (RRSIG expired 2026-11-20 for bad.test/MX)"), "\(output.stdout)")
        #expect(lines.last == "4 passed, 3 failed")
    }

    @Test("hostile fixtures: a bad $DNSSEC line or dnssec expectation is a load error naming it", arguments: [
        ("zone = [[\n$DNSSEC signed example.test.\n]],", "zone: rules/tests/x_test.lua (zone):1: $DNSSEC takes a status"),
        ("zone = [[\n$ORIGIN a.test.\n$DNSSEC secure @ \"reason\"\n]],", "$DNSSEC secure takes no reason"),
        ("dnssec = { ['example.test'] = 'secure' },", "'example.test' is not a question (\"name/TYPE\", e.g. \"example.com/MX\")"),
        ("dnssec = { ['example.test/NOPE'] = 'secure' },", "'example.test/NOPE' is not a question"),
        ("dnssec = { ['example.test/MX'] = 'maybe' },", "test 'x': dnssec[\"example.test/MX\"]: expected \"secure\", \"insecure\", \"bogus\" or \"indeterminate\""),
        ("dnssec = { 'example.test/MX' },", "test 'x': dnssec must be a table of [\"name/TYPE\"]"),
    ])
    func badFixtures(fixture: String, message: String) throws {
        let test = fixture.hasPrefix("zone")
            ? "return { rules = '../main.lua', \(fixture) tests = { { name = 'x', expect = { connect = 'next' } } } }"
            : "return { rules = '../main.lua', tests = { { name = 'x', \(fixture) expect = { connect = 'next' } } } }"
        let directory = try CLI.scratch(["rules/main.lua": Self.rules, "rules/tests/x_test.lua": test])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["test", "rules/tests"], in: directory)
        #expect(output.status == 1)
        #expect(output.stdout.contains("FAIL - rules/tests/x_test.lua: the test file does not load:"), "\(output.stdout)")
        #expect(output.stdout.contains(message), "\(output.stdout)")
    }

    @Test("vrules run: a bogus name ends an uncaught rule in 451 4.4.3 with the reason; secure queries say so")
    func runReportsTheStatus() throws {
        let directory = try CLI.scratch(["main.lua": Self.rules, "dnssec.zone": Self.zone])
        defer { try? FileManager.default.removeItem(at: directory) }
        let session = ["run", "--rules", "main.lua", "--zone", "dnssec.zone", "--client-ip", "192.0.2.10", "--helo", "h.test"]
        let bogus = try CLI.run(session + ["--mail-from", "a@bad.test"], in: directory)
        #expect(bogus.status == 0, "\(bogus.stderr)")
        let lines = bogus.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("    query bad.test/MX: bogus (RRSIG expired 2026-11-20 for bad.test/MX)"), "\(bogus.stdout)")
        #expect(lines.contains("  failure: rule 'sender domain must be signed': DNS bogus for bad.test/MX: RRSIG expired 2026-11-20 for bad.test/MX"))
        #expect(lines.contains("mail: defer 451 4.4.3 Directory server failure, try again later"))

        let signed = try CLI.run(session + ["--mail-from", "a@signed.test"], in: directory)
        #expect(signed.stdout.contains("    query signed.test/MX: ok (1 records) secure\n"), "\(signed.stdout)")
        #expect(signed.stdout.contains("mail: accept 250 2.1.0"), "\(signed.stdout)")

        let json = try CLI.run(session + ["--mail-from", "a@bad.test", "--json"], in: directory)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let stages = object?["stages"] as? [[String: Any]] ?? []
        let queries = stages.flatMap { ($0["trace"] as? [[String: Any]]) ?? [] }.filter { $0["event"] as? String == "query" }
        #expect(queries.count == 1)
        #expect(queries.first?["security"] as? String == "bogus")
        #expect(queries.first?["reason"] as? String == "RRSIG expired 2026-11-20 for bad.test/MX")
    }

    @Test("vrules run: a bad $DNSSEC line is a zone error with its path and line (exit 2)")
    func runRefusesABadMark() throws {
        let directory = try CLI.scratch(["main.lua": Self.rules, "bad.zone": "$ORIGIN x.test.\n$DNSSEC secure x.test. \"no\"\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["run", "--rules", "main.lua", "--zone", "bad.zone", "--client-ip", "192.0.2.10"], in: directory)
        #expect(output.status == 2)
        #expect(output.stderr.contains("bad.zone:2: $DNSSEC secure takes no reason"), "\(output.stderr)")
    }

    @Test("vrules api describes secure on every dns.* result; vrules check accepts a rule reading it")
    func apiAndCheck() throws {
        let api = try CLI.run(["api", "--luals"])
        #expect(api.status == 0)
        for type in ["vrules.Addresses", "vrules.Names", "vrules.MXRoute", "vrules.Iprev", "vrules.DNSBLResult", "vrules.Records"] {
            let block = api.stdout.components(separatedBy: "---@class \(type)").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
            #expect(block.contains("---@field secure boolean"), "\(type): \(block)")
        }
        #expect(api.stdout.contains("---@return vrules.Addresses"), "dns.lookup returns the array that carries secure")
        let directory = try CLI.scratch(["main.lua": Self.rules])
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", "main.lua"], in: directory)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }
}
