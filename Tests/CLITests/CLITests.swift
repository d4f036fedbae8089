import Foundation
import Testing
import VrulesTestSupport

@Suite("vrules run")
struct RunCommandTests {
    let zone = ["--zone", "examples/example.zone"]

    @Test("a good sender is accepted through every stage")
    func accepted() throws {
        let output = try CLI.run(["run"] + self.zone + ["--client-ip", "192.0.2.10", "--helo", "mail.good.example",
                                                        "--mail-from", "alice@good.example", "--rcpt", "bob@implicit.example"])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("connect: next 220 2.0.0 Service ready"))
        #expect(lines.contains("rcpt: next 250 2.1.5 Recipient ok"))
        #expect(lines.contains("  dns.iprev(192.0.2.10) -> pass mail.good.example"))
        #expect(lines.contains("    query 10.2.0.192.in-addr.arpa/PTR: ok (1 records)"))
        // After the session, the headers the message would carry.
        #expect(lines.suffix(3).first == "session completed", "\(output.stdout)")
        #expect(lines.last == "Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10; spf=none smtp.mailfrom=alice@good.example")
    }

    @Test("reverse DNS failure is rejected with 550 5.7.25 and the session stops")
    func rejected() throws {
        let output = try CLI.run(["run"] + self.zone + ["--client-ip", "192.0.2.66", "--helo", "liar.example",
                                                        "--mail-from", "m@good.example", "--rcpt", "b@implicit.example"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("connect: reject 550 5.7.25 Reverse DNS validation failed\nsession ended at connect\n"))
        #expect(!output.stdout.contains("== helo"))
    }

    @Test("a DNS timeout defers with 451 4.4.3; IPv6 clients work")
    func deferred() throws {
        let output = try CLI.run(["run"] + self.zone + ["--client-ip", "2001:db8::10", "--helo", "mail.good.example",
                                                        "--mail-from", "alice@good.example", "--rcpt", "b@implicit.example",
                                                        "--fault", "good.example=timeout"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("connect: next 220"))
        #expect(output.stdout.contains("mail: defer 451 4.4.3 Directory server failure, try again later"))
        #expect(output.stdout.contains("    query good.example/MX: timeout"))
    }

    @Test("sender with Null MX, rcpt with Null MX, sender domain that does not exist")
    func senderChecks() throws {
        let base = ["run"] + self.zone + ["--client-ip", "192.0.2.10", "--helo", "mail.good.example"]
        let nullMX = try CLI.run(base + ["--mail-from", "a@nullmx.example", "--rcpt", "b@good.example"])
        #expect(nullMX.stdout.contains("mail: reject 550 5.7.27 Sender address has null MX"))
        let none = try CLI.run(base + ["--mail-from", "a@nowhere.example", "--rcpt", "b@good.example"])
        #expect(none.stdout.contains("mail: reject 550 5.4.4 Unable to route"))
        let rcpt = try CLI.run(base + ["--mail-from", "a@good.example", "--rcpt", "b@nullmx.example", "--rcpt", "c@alias.example"])
        #expect(rcpt.stdout.contains("rcpt: reject 556 5.1.10 Recipient address has null MX"))
        #expect(rcpt.stdout.contains("rcpt: next 250 2.1.5"))
        #expect(rcpt.stdout.contains("session completed"))
        let helo = try CLI.run(["run"] + self.zone + ["--client-ip", "192.0.2.10", "--helo", "localhost"])
        #expect(helo.stdout.contains("helo: reject 550 5.7.1"))
        let loopback = try CLI.run(["run"] + self.zone + ["--client-ip", "127.0.0.1", "--helo", "x", "--mail-from", "a@nowhere.example"])
        #expect(loopback.stdout.contains("connect: accept 220"))
        #expect(loopback.stdout.contains("mail: accept 250"))
    }

    @Test("what a rule logs is one line of the report, its control characters shown as Lua escapes")
    func controlCharactersInLogs() throws {
        let directory = try CLI.scratch(["odd.lua": """
            return { connect = { rule("odd", function(ctx)
              log.warn("a\\27[2Jb\\nconnect: accept")
              return next()
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let output = try CLI.run(["run", "--rules", "odd.lua", "--zone", zone, "--client-ip", "192.0.2.10"], in: directory)
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("  log.warn [odd]: a\\u{1B}[2Jb\\nconnect: accept"), "\(lines)")
        #expect(!lines.contains("connect: accept"))
        #expect(!output.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    /// A rule that logs a string of any size wrote a line of that size, per request in serve.
    @Test("a log message is cut at 4,096 bytes on a character boundary, saying how much was left out")
    func longLogMessages() throws {
        let directory = try CLI.scratch(["long.lua": """
            return { connect = { rule("long", function(ctx)
              log.info(("x"):rep(1000000))
              log.info(("x"):rep(4095) .. "é" .. "tail")
              log.info(("y"):rep(4096))
              return next()
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let output = try CLI.run(["run", "--rules", "long.lua", "--zone", zone, "--client-ip", "192.0.2.10"], in: directory)
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("  log.info [long]: " + String(repeating: "x", count: 4096) + "… (995904 bytes more)"))
        // "é" is two bytes: it does not fit after 4,095, and is left out whole.
        #expect(lines.contains("  log.info [long]: " + String(repeating: "x", count: 4095) + "… (6 bytes more)"))
        #expect(lines.contains("  log.info [long]: " + String(repeating: "y", count: 4096)))
        #expect(lines.allSatisfy { $0.utf8.count < 4200 })
    }

    @Test("--json prints the report as JSON")
    func json() throws {
        let output = try CLI.run(["run", "--json"] + self.zone + ["--client-ip", "192.0.2.66"])
        #expect(output.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        let stages = try #require(object?["stages"] as? [[String: Any]])
        #expect(stages.first?["verdict"] as? String == "reject")
        #expect((stages.first?["reply"] as? [String: Any])?["enhanced"] as? String == "5.7.25")
        #expect(object?["stopped_at"] as? String == "connect")
    }

    @Test("usage, zone and script errors exit with 2 and say what is wrong")
    func errors() throws {
        let badIP = try CLI.run(["run", "--client-ip", "not-an-ip"] + self.zone)
        #expect(badIP.status == 2)
        #expect(badIP.stderr.contains("--client-ip"))
        let badFault = try CLI.run(["run", "--fault", "x=explode"] + self.zone)
        #expect(badFault.status == 2)
        #expect(badFault.stderr.contains("unknown fault 'explode'"))
        let missing = try CLI.run(["run", "--rules", "does/not/exist.lua"] + self.zone)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("does/not/exist.lua"))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-cli-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "return { connect = { rule('x', function() return accept( end) } }".write(
            to: directory.appendingPathComponent("broken.lua"), atomically: true, encoding: .utf8)
        try "this is not a zone\n".write(to: directory.appendingPathComponent("bad.zone"), atomically: true, encoding: .utf8)
        let broken = try CLI.run(["run", "--rules", directory.appendingPathComponent("broken.lua").path] + self.zone)
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("broken.lua:1:"))
        let badZone = try CLI.run(["run", "--zone", directory.appendingPathComponent("bad.zone").path])
        #expect(badZone.status == 2)
        #expect(badZone.stderr.contains("bad.zone:1:"))
    }

    /// `--auth :` stopped the process on an index out of range; `:alice` made "alice" the mechanism.
    @Test("--auth needs a mechanism and a username, --client-port and --server-port a port; each reaches ctx")
    func authAndPort() throws {
        for auth in [":", "PLAIN:", ":alice", "PLAIN"] {
            let refused = try CLI.run(["run", "--auth", auth] + self.zone)
            #expect(refused.status == 2, "\(auth): \(refused.stderr)")
            #expect(refused.stderr.hasPrefix("Error: --auth: expected MECHANISM:USERNAME, both given, e.g. PLAIN:alice; got '\(auth)'\n"),
                    "\(auth): \(refused.stderr)")
        }
        for option in ["--client-port", "--server-port"] {
            for port in ["65536", "-1"] {
                let refused = try CLI.run(["run", "\(option)=\(port)"] + self.zone)
                #expect(refused.status == 2, "\(port): \(refused.stderr)")
                #expect(refused.stderr.hasPrefix("Error: \(option): \(port) is not a port (0 to 65535)\n"), "\(port): \(refused.stderr)")
            }
        }
        let directory = try CLI.scratch(["auth.lua": """
        return {
          connect = { rule("ports", function(ctx)
            log.info("client " .. tostring(ctx.client.port) .. " server " .. tostring(ctx.server.port))
          end) },
          authenticate = { rule("auth", function(ctx)
            log.info(ctx.auth.mechanism .. " " .. ctx.auth.username)
          end) },
        }
        """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let accepted = try CLI.run(["run", "--zone", zone, "--rules", "auth.lua", "--auth", "PLAIN:alice:x", "--client-port", "65535",
                                    "--server-port", "587", "--helo", "x.test"], in: directory)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(accepted.stdout.contains("  log.info [auth]: PLAIN alice:x\n"), "\(accepted.stdout)")
        #expect(accepted.stdout.contains("  log.info [ports]: client 65535 server 587\n"), "\(accepted.stdout)")
        let unset = try CLI.run(["run", "--zone", zone, "--rules", "auth.lua"], in: directory)
        #expect(unset.stdout.contains("  log.info [ports]: client nil server nil\n"), "\(unset.stdout)")
    }

    @Test("the example sessions script shows accept, reject, defer and a dry run")
    func exampleSessions() throws {
        let run = try ChildProcess.run(URL(fileURLWithPath: "/bin/bash"),
                                       [CLI.packageRoot.appendingPathComponent("examples/sessions.sh").path, CLI.binary.path])
        let text = run.stdout
        #expect(run.status == 0, "\(run.stderr)")
        #expect(text.contains("session completed"))
        #expect(text.contains("connect: reject 550 5.7.25"))
        #expect(text.contains("mail: defer 451 4.4.3"))
        #expect(text.hasSuffix("""
            connect: reject 550 5.7.25 Reverse DNS validation failed (dry run: answered DUNNO)
            dry run: the session would have ended at connect; it went on
            Authentication-Results: mx.vrules.test; iprev=fail policy.iprev=192.0.2.66

            """), "\(text)")
    }
}
