import Foundation
import Testing
import VrulesTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The blocklist cases of `examples/dnsbl/tests` through the network resolver against a
/// real Knot serving the same zone data, with a routed zone on a server that never answers.
@Suite("DNS blocklists through the network resolver and Knot", .serialized)
struct DNSBLNetworkTests {
    /// A bound UDP socket that never reads: a name server that is silent.
    final class SilentServer {
        let port: UInt16
        private let descriptor: Int32

        init() throws {
            let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
            }
            guard bound else {
                close(descriptor)
                throw ZoneRoutingTests.CLIFailure("cannot bind a silent UDP socket")
            }
            self.descriptor = descriptor
            self.port = UInt16(bigEndian: address.sin_port)
        }

        deinit { close(self.descriptor) }
    }

    /// The zones of the example's fixture, one Knot zone file each (split at `$ORIGIN`).
    static func fixtureZones() throws -> [String: String] {
        let test = try String(contentsOf: CLI.packageRoot.appendingPathComponent("examples/dnsbl/tests/dnsbl_test.lua"), encoding: .utf8)
        guard let start = test.range(of: "zone = [[\n"), let end = test.range(of: "]]", range: start.upperBound..<test.endIndex) else {
            throw ZoneRoutingTests.CLIFailure("no zone fixture in the example test")
        }
        var zones: [String: String] = [:]
        var current: String?
        for line in test[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("$ORIGIN ") {
                current = String(line.dropFirst("$ORIGIN ".count).dropLast())
                zones[current!] = "$TTL 300\n"
            }
            if let current { zones[current]! += line + "\n" }
        }
        for (zone, text) in zones { zones[zone] = text + "@ NS ns.\(zone).\nns A 192.0.2.53\n" }
        zones["dead.example"] = ZoneRoutingTests.zone("dead.example", "66.2.0.192 A 127.0.0.2")
        return zones
    }

    @Test("vrules dns dnsbl shows a list's TXT text on its one line, its control characters as Lua escapes")
    func hostileText() throws {
        let knot = try ZoneRoutingTests.Knot(zones: ["evil.example": ZoneRoutingTests.zone("evil.example", """
            2.0.0.127 A 127.0.0.2
            66.2.0.192 A 127.0.0.2
            66.2.0.192 TXT "a\\027[2Jb\\010evil.example: clean"
            """)])
        let directory = try CLI.scratch(["vrules.toml": """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:\(knot.port)"]
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["dns", "dnsbl", "--config", "vrules.toml", "192.0.2.66", "evil.example"], in: directory)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("  evil.example: listed 127.0.0.2 \"a\\u{1B}[2Jb\\nevil.example: clean\""), "\(output.stdout)")
        #expect(!lines.contains { $0.hasPrefix("evil.example: clean") })
        #expect(!output.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    @Test("listed (IPv4, IPv6, domain, with TXT), clean, refused codes, a wildcard zone, a dead zone, a silent zone")
    func networkCases() throws {
        let knot = try ZoneRoutingTests.Knot(zones: try Self.fixtureZones())
        let silent = try SilentServer()
        let directory = try CLI.scratch([
            "vrules.toml": """
                [server.dns]
                type = "custom"
                servers = ["127.0.0.1:\(knot.port)"]

                [server.dns.options]
                timeout = "500ms"
                attempts = 0

                [server.dns.zones."slow.example"]
                type = "custom"
                servers = ["127.0.0.1:\(silent.port)"]
                """,
            "rules.lua": """
                local function show(results)
                  local parts = {}
                  for _, r in ipairs(results) do
                    parts[#parts + 1] = r.zone .. "=" .. r.status .. (r.text and ("(" .. r.text .. ")") or "")
                  end
                  return table.concat(parts, " ")
                end
                return {
                  connect = { rule("ip lists", function(ctx)
                    return defer("451 4.3.0 " .. show(dns.dnsbl(ctx.client.ip, { "zen.spamhaus.org", "bl.example", "dead.example" })))
                  end) },
                  mail = { rule("domain list", function(ctx)
                    return defer("451 4.3.0 " .. show(dns.dnsbl(ctx.mail_from.domain, { "dbl.spamhaus.org", "slow.example", "dead.example" })))
                  end) },
                }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        func stage(_ name: String, client: String, sender: String? = nil) throws -> String {
            var arguments = ["run", "--config", "vrules.toml", "--rules", "rules.lua", "--client-ip", client, "--helo", "x.test"]
            if let sender { arguments += ["--mail-from", sender] }
            let output = try CLI.run(arguments, in: directory)
            return output.stdout.split(separator: "\n").first { $0.hasPrefix("\(name): ") }.map(String.init)
                ?? output.stdout + output.stderr
        }
        let listed = try stage("connect", client: "192.0.2.66")
        #expect(listed.contains("zen.spamhaus.org=listed(https://check.spamhaus.org/listed/?searchterm=192.0.2.66)"), "\(listed)")
        #expect(listed.contains("bl.example=error"), "the wildcarding zone fails its test points: \(listed)")
        #expect(listed.contains("dead.example=error"), "a zone without its test point 127.0.0.2: \(listed)")
        #expect(try stage("connect", client: "2001:db8::66").contains("zen.spamhaus.org=listed"))
        #expect(try stage("connect", client: "::ffff:192.0.2.66").contains("zen.spamhaus.org=listed"))
        #expect(try stage("connect", client: "192.0.2.10").contains("zen.spamhaus.org=clean"))
        for client in ["192.0.2.77", "192.0.2.78", "192.0.2.79"] {
            #expect(try stage("connect", client: client).contains("zen.spamhaus.org=refused"), "\(client)")
        }
        // The mail stage asks three zones, one on a server that never answers: the others'
        // answers come, the silent zone is a temperror after one timeout, nothing raises.
        let started = Date()
        let domain = try Self.mailStage(directory: directory)
        let elapsed = Date().timeIntervalSince(started)
        #expect(domain.contains("dbl.spamhaus.org=listed(Listed in the DBL)"), "\(domain)")
        #expect(domain.contains("slow.example=temperror"), "\(domain)")
        #expect(domain.contains("dead.example=error"), "\(domain)")
        #expect(elapsed < 5, "\(elapsed)")
    }

    /// The mail stage alone: the script's connect rule moved to a stage the session never reaches.
    static func mailStage(directory: URL) throws -> String {
        let rules = try String(contentsOf: directory.appendingPathComponent("rules.lua"), encoding: .utf8)
            .replacingOccurrences(of: "connect = { rule(\"ip lists\"", with: "preq = { rule(\"ip lists\"")
        try rules.write(to: directory.appendingPathComponent("mail.lua"), atomically: true, encoding: .utf8)
        let mail = try CLI.run(["run", "--config", "vrules.toml", "--rules", "mail.lua", "--client-ip", "192.0.2.10",
                                "--helo", "x.test", "--mail-from", "a@spam.test"], in: directory)
        return mail.stdout.split(separator: "\n").first { $0.hasPrefix("mail: ") }.map(String.init) ?? mail.stdout + mail.stderr
    }
}
