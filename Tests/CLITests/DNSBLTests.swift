import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import VrulesTestSupport

/// `dns.dnsbl` through the surfaces an operator uses: the shipped example policy and its
/// tests, `vrules run`, and the linter.
@Suite("DNS blocklists through vrules test, run and check")
struct DNSBLTests {
    @Test("the example blocklist policy passes its own tests: listed, clean, refused codes, a wildcard, a timeout")
    func examplePolicyTests() throws {
        let output = try CLI.run(["test", "examples/dnsbl/tests"])
        #expect(output.status == 0, "\(output.stdout)")
        #expect(output.stdout.hasSuffix("11 passed, 0 failed\n"), "\(output.stdout)")
    }

    @Test("vrules run reports each zone's status (a zone that fails its test points is an error)")
    func runReportsZones() throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN zen.spamhaus.org.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                2.0.0.127 A 127.0.0.2
                77.2.0.192 A 127.255.255.254
                $ORIGIN wild.example.
                @ SOA ns hostmaster 1 3600 600 86400 300
                * A 192.0.2.1
                """,
            "rules.lua": """
                return { connect = { rule("lists", function(ctx)
                  local r = dns.dnsbl(ctx.client.ip, { "zen.spamhaus.org", "wild.example", "none.example" })
                  ctx.vars.statuses = r[1].status .. "," .. r[2].status .. "," .. r["none.example"].status
                end) } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["run", "--zone", "lists.zone", "--rules", "rules.lua", "--client-ip", "192.0.2.77",
                                  "--helo", "x.test"], in: directory)
        #expect(output.stdout.contains("zen.spamhaus.org refused, wild.example error, none.example error"), "\(output.stdout)")
        #expect(output.stdout.contains("connect: next"), "\(output.stdout)")
    }

    @Test("the linter knows dns.dnsbl and its example checks clean")
    func linterKnowsIt() throws {
        let output = try CLI.run(["check", "examples/dnsbl/dnsbl.lua", "examples/dnsbl/tests/dnsbl_test.lua"])
        #expect(output.status == 0, "\(output.stdout)")
        let misspelt = try CLI.scratch(["rules.lua": """
            return { connect = { rule("x", function(ctx) dns.dnsbI(ctx.client.ip, "zen.spamhaus.org") end) } }
            """])
        defer { try? FileManager.default.removeItem(at: misspelt) }
        let wrong = try CLI.run(["check", "rules.lua"], in: misspelt)
        #expect(wrong.stdout.contains("dnsbl"), "\(wrong.stdout)")
    }

    @Test("a blocklist zone that is the root or not a name is refused alike by check, the configuration and vrules dns dnsbl")
    func invalidZones() throws {
        let directory = try CLI.scratch([
            "rules.lua": """
                return { connect = { rule("x", function(ctx)
                  dns.dnsbl(ctx.client.ip, "zen.spamhaus.org")
                  dns.dnsbl(ctx.client.ip, "zen..spamhaus.org")
                  dns.dnsbl(ctx.client.ip, "")
                end) } }

                """,
            "vrules.toml": "[dnsbl.\".\"]\nlisted = [\"127.0.0.2\"]\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", "rules.lua", "--config", "vrules.toml"], in: directory)
        #expect(check.stdout == """
            rules.lua:3:7: error: dns.dnsbl: invalid domain name 'zen..spamhaus.org': empty label [invalid-zone]
            rules.lua:4:7: error: dns.dnsbl: invalid domain name '': a blocklist zone cannot be the root [invalid-zone]
            vrules.toml:1:8: error: dnsbl.".": invalid domain name '.': a blocklist zone cannot be the root [config-value]

            """)
        #expect(check.status == 1)
        // Refused before the configuration is read or anything is asked.
        let asked = try CLI.run(["dns", "dnsbl", "127.0.0.2", "zen.spamhaus.org", ""], in: directory)
        #expect(asked.status == 2)
        #expect(asked.stderr == "vrules: invalid domain name '': a blocklist zone cannot be the root\n", "\(asked.stderr)")
    }

    @Test("[dnsbl.\"zone\"] in vrules.toml says which codes are listings and which are refusals")
    func configuredCodes() throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN bl.example.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                2.0.0.127 A 127.0.0.10
                9.2.0.192 A 127.0.0.9
                2.2.0.192 A 127.0.0.2
                7.2.0.192 A 127.0.0.7
                """,
            "rules.lua": """
                return { connect = { rule("lists", function(ctx)
                  local r = dns.dnsbl(ctx.client.ip, "bl.example")[1]
                  if r.status == "listed" then return reject(replies.access_denied) end
                  return defer("451 4.3.0 " .. r.status)
                end) } }
                """,
            "vrules.toml": """
                [server.dns]
                type = "system"

                [dnsbl."bl.example"]
                listed = ["127.0.0.9-127.0.0.10"]
                refused = ["127.0.0.7/32"]
                """,
            "broken.toml": """
                [dnsbl."bl.example"]
                listed = ["127.0.0.9-127.0.0.1"]
                refuse = ["127.0.0.7"]
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        func verdict(_ ip: String) throws -> String {
            let output = try CLI.run(["run", "--config", "vrules.toml", "--zone", "lists.zone", "--rules", "rules.lua",
                                      "--client-ip", ip, "--helo", "x.test"], in: directory)
            return output.stdout.split(separator: "\n").first { $0.hasPrefix("connect: ") }.map(String.init) ?? output.stdout + output.stderr
        }
        #expect(try verdict("192.0.2.9") == "connect: reject 550 5.7.1 Access denied")
        #expect(try verdict("192.0.2.2") == "connect: defer 451 4.3.0 error")
        #expect(try verdict("192.0.2.7") == "connect: defer 451 4.3.0 refused")
        let check = try CLI.run(["check", "broken.toml"], in: directory)
        #expect(check.status == 1)
        #expect(check.stdout.contains("dnsbl.\"bl.example\".listed[0]") || check.stdout.contains("is not an IPv4 address"), "\(check.stdout)")
        #expect(check.stdout.contains("refuse"), "\(check.stdout)")
    }

    @Test("vrules check warns when a blocklist zone would be asked through a public resolver")
    func publicResolverWarning() throws {
        let directory = try CLI.scratch([
            "main.lua": """
                return { connect = { rule("lists", function(ctx)
                  dns.dnsbl(ctx.client.ip, "zen.spamhaus.org")
                  dns.dnsbl(ctx.client.ip, "bl.example")
                end) } }
                """,
            "vrules.toml": """
                [server.dns]
                type = "cloudflare"

                [dnsbl."dbl.spamhaus.org"]
                listed = ["127.0.1.2-127.0.1.255"]

                [server.dns.zones."bl.example"]
                type = "custom"
                servers = ["127.0.0.1:53"]
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.status == 0, "warnings only: \(output.stdout)")
        #expect(output.stdout.contains("main.lua:2:1: warning: blocklist zone 'zen.spamhaus.org' would be asked through cloudflare"),
                "\(output.stdout)")
        #expect(output.stdout.contains("vrules.toml:1:1: warning: blocklist zone 'dbl.spamhaus.org' would be asked through cloudflare"),
                "\(output.stdout)")
        #expect(!output.stdout.contains("'bl.example'"), "routed to a local resolver: \(output.stdout)")
    }

    @Test("vrules serve: a zone that fails its test points is logged once at warning level and shows in metrics")
    func healthInServe() async throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN dead.example.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                66.2.0.192 A 127.0.0.2
                """,
            "rules.lua": """
                return { connect = { rule("lists", function(ctx)
                  local r = dns.dnsbl(ctx.client.ip, "dead.example")[1]
                  if r.status == "listed" then return reject(replies.access_denied) end
                end) } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--rules", "rules.lua", "--zone", "lists.zone", "--log-level", "warning",
                                                  "--metrics", "127.0.0.1:\(metricsPort)"], directory: directory)
        defer { _ = server.stop() }
        let client = try PolicyClient(port: server.port)
        for instance in ["a", "b"] {
            let answer = try client.ask(["request": "smtpd_access_policy", "protocol_state": "CONNECT",
                                         "client_address": "192.0.2.66", "client_port": "4000", "instance": instance])
            #expect(answer == "DUNNO", "a failing zone answers error, never listed: \(answer ?? "no answer")")
        }
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        let metrics = String(decoding: data, as: UTF8.self)
        #expect(metrics.contains("vrules_dnsbl_zone_failing{zone=\"dead.example\"} 1"), "\(metrics)")
        let warnings = server.log.components(separatedBy: "dnsbl zone dead.example failed its health check").count - 1
        #expect(warnings == 1, "\(server.log)")
    }

    @Test("a data-query service: queries go to the keyed zone, results carry the list's name; mistakes are config errors")
    func queryKey() throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN abc123.zen.dq.spamhaus.net.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                2.0.0.127 A 127.0.0.2
                66.2.0.192 A 127.0.0.3
                """,
            "rules.lua": """
                return { connect = { rule("lists", function(ctx)
                  local r = dns.dnsbl(ctx.client.ip, "zen.spamhaus.org")[1]
                  return defer("451 4.3.0 " .. r.zone .. " " .. r.status .. " " .. table.concat(r.codes, ","))
                end) } }
                """,
            "vrules.toml": """
                [dnsbl."zen.spamhaus.org"]
                query = "{key}.zen.dq.spamhaus.net"
                query_key = "abc123"
                """,
            "nokey.toml": """
                [dnsbl."zen.spamhaus.org"]
                query = "{key}.zen.dq.spamhaus.net"

                [dnsbl."other.example"]
                query_key = "abc"
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["run", "--config", "vrules.toml", "--zone", "lists.zone", "--rules", "rules.lua",
                                  "--client-ip", "192.0.2.66", "--helo", "x.test"], in: directory)
        #expect(output.stdout.contains("connect: defer 451 4.3.0 zen.spamhaus.org listed 127.0.0.3"), "\(output.stdout)")
        #expect(output.stdout.contains("66.2.0.192.abc123.zen.dq.spamhaus.net/A"), "\(output.stdout)")
        let check = try CLI.run(["check", "nokey.toml"], in: directory)
        #expect(check.stdout.contains("dnsbl.\"zen.spamhaus.org\".query: the template uses {key}: set query_key"), "\(check.stdout)")
        #expect(check.stdout.contains("dnsbl.\"other.example\".query_key: query_key needs query"), "\(check.stdout)")
    }

    @Test("vrules serve checks the zones of [dnsbl] against their test points at start")
    func healthAtStart() throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN good.example.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                2.0.0.127 A 127.0.0.2
                $ORIGIN dead.example.
                @ SOA ns hostmaster 1 3600 600 86400 300
                """,
            "rules.lua": "return { connect = { rule(\"none\", function(ctx) end) } }",
            "vrules.toml": """
                [server.dns]
                type = "system"

                [dnsbl."dead.example"]
                listed = ["127.0.0.2"]

                [dnsbl."good.example"]
                listed = ["127.0.0.2"]
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServeProcess(arguments: ["--rules", "rules.lua", "--zone", "lists.zone", "--config", "vrules.toml",
                                                  "--log-level", "warning"], directory: directory)
        defer { _ = server.stop() }
        #expect(server.log.contains("dnsbl zone dead.example failed its health check: test point 127.0.0.2 is not listed"),
                "\(server.log)")
        #expect(!server.log.contains("dnsbl zone good.example"), "\(server.log)")
    }

    @Test("a blocklist whose DNS does not answer at start holds the start at most 5 s: the server listens and says READY=1")
    func slowHealthAtStart() throws {
        let directory = try CLI.scratch([
            "lists.zone": """
                $ORIGIN slow.example.
                $TTL 300
                @ SOA ns hostmaster 1 3600 600 86400 300
                2.0.0.127 A 127.0.0.2
                """,
            "rules.lua": "return { connect = { rule(\"none\", function(ctx) end) } }",
            "vrules.toml": """
                [dnsbl."slow.example"]
                listed = ["127.0.0.2"]
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let notify = try NotifySocket()
        let started = Date()
        // The test point's answer takes a minute, as from a resolver that is down at boot.
        let server = try ServeProcess(arguments: ["--rules", "rules.lua", "--zone", "lists.zone", "--config", "vrules.toml",
                                                  "--fault", "2.0.0.127.slow.example=delay:60s"],
                                      directory: directory, notify: notify)
        let waited = Date().timeIntervalSince(started)
        #expect(waited < 12, "READY=1 after \(waited) s")
        #expect(server.log.contains("[vrules] the blocklists' first checks are still waiting for DNS; serving meanwhile"), "\(server.log)")
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("slow")) != nil)
        #expect(server.stop() == 0)
    }
}
