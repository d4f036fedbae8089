import Foundation
import Testing
import VrulesTestSupport

/// `[server.dns.zones."<zone>"]` against two real Knot servers: every query under the
/// routed zone goes to its own server, everything else to the configured one.
@Suite("Resolvers routed by the zone asked", .serialized)
struct ZoneRoutingTests {
    /// A knotd on a free loopback port serving `zones` (name → zone file text).
    final class Knot {
        let port: UInt16
        let process: Process
        let directory: URL

        init(zones: [String: String]) throws {
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-knot-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
            self.port = try LoopbackPorts.free()
            var config = KnotConfiguration.header(directory: self.directory, port: self.port)
            for (zone, text) in zones {
                let file = self.directory.appendingPathComponent("\(zone).zone")
                try text.write(to: file, atomically: true, encoding: .utf8)
                config += "  - domain: \(zone)\n    file: \"\(file.path)\"\n"
            }
            let configURL = self.directory.appendingPathComponent("knot.conf")
            try config.write(to: configURL, atomically: true, encoding: .utf8)
            let log = self.directory.appendingPathComponent("knot.log")
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/knotd") else {
                throw CLIFailure("knotd is missing: apt-get install knot (scripts/test.sh installs it)")
            }
            self.process = try ServerProcess.launch("/usr/sbin/knotd", ["-c", configURL.path], log: log, directory: self.directory)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                if zones.keys.allSatisfy({ text.contains("[\($0).] loaded") }) { return }
                usleep(50_000)
            }
            self.process.terminate()
            throw CLIFailure("knotd did not load its zones: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }

        deinit {
            ServerProcess.stop(self.process, name: "knotd")
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    struct CLIFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func zone(_ origin: String, _ records: String) -> String {
        """
        $ORIGIN \(origin).
        $TTL 300
        @ SOA ns.\(origin). hostmaster.\(origin). 1 3600 600 86400 300
        @ NS ns.\(origin).
        ns A 192.0.2.53
        \(records)
        """
    }

    @Test("a DNSBL zone is answered only by its own server; other names by the configured one")
    func routing() throws {
        // The main server also serves a bl.example that lists everyone: asked there, the
        // client would come out listed with 127.0.0.9.
        let main = try Knot(zones: [
            "good.test": Self.zone("good.test", "mail A 192.0.2.10"),
            "bl.example": Self.zone("bl.example", "2.0.0.127 A 127.0.0.2\n* A 127.0.0.9"),
        ])
        let lists = try Knot(zones: [
            "bl.example": Self.zone("bl.example", "2.0.0.127 A 127.0.0.2\n66.2.0.192 A 127.0.0.4"),
        ])
        let directory = try CLI.scratch([
            "vrules.toml": """
                [server.dns]
                type = "custom"
                servers = ["127.0.0.1:\(main.port)"]

                [server.dns.options]
                timeout = "2s"

                [server.dns.zones."bl.example"]
                type = "custom"
                servers = ["127.0.0.1:\(lists.port)"]
                """,
            "rules.lua": """
                return { connect = { rule("lists", function(ctx)
                  local address = dns.lookup("mail.good.test")[1]
                  local r = dns.dnsbl(ctx.client.ip, "bl.example")[1]
                  return defer("451 4.3.0 " .. tostring(address) .. " " .. r.status .. " " .. table.concat(r.codes, ","))
                end) } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        func verdict(_ ip: String) throws -> String {
            let output = try CLI.run(["run", "--config", "vrules.toml", "--rules", "rules.lua", "--client-ip", ip,
                                      "--helo", "x.test"], in: directory)
            return output.stdout.split(separator: "\n").first { $0.hasPrefix("connect: ") }.map(String.init)
                ?? output.stdout + output.stderr
        }
        #expect(try verdict("192.0.2.66") == "connect: defer 451 4.3.0 192.0.2.10 listed 127.0.0.4")
        #expect(try verdict("192.0.2.10") == "connect: defer 451 4.3.0 192.0.2.10 clean ")
        let check = try CLI.run(["check", "vrules.toml"], in: directory)
        #expect(check.status == 0, "\(check.stdout)")

        // vrules dns dnsbl asks through the same routes and reads the codes the same way.
        let text = try CLI.run(["dns", "dnsbl", "--config", "vrules.toml", "192.0.2.66", "bl.example", "nothing.example"],
                               in: directory)
        #expect(text.stdout.contains("bl.example: listed 127.0.0.4"), "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("nothing.example: temperror"), "\(text.stdout)")  // Knot refuses a zone it does not serve
        let json = try CLI.run(["dns", "dnsbl", "--json", "--config", "vrules.toml", "::ffff:192.0.2.66", "bl.example"],
                               in: directory)
        #expect(json.stdout.contains("\"status\" : \"listed\""), "\(json.stdout)\(json.stderr)")
        #expect(json.stdout.contains("66.2.0.192.bl.example"), "\(json.stdout)")
        let bad = try CLI.run(["dns", "dnsbl", "--config", "vrules.toml", "not an address!", "bl.example"], in: directory)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("neither an IP address nor a domain name"), "\(bad.stderr)")
    }

    @Test("a mistake in a routed zone's table is reported with its key path")
    func mistakes() throws {
        let directory = try CLI.scratch(["vrules.toml": """
            [server.dns.zones."bl.example"]
            type = "custom"
            server = ["127.0.0.1:53"]
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", "vrules.toml"], in: directory)
        #expect(check.status == 1)
        #expect(check.stdout.contains("server.dns.zones.\"bl.example\".server: unknown key (did you mean 'servers'?)"), "\(check.stdout)")
    }
}
