import Foundation
import Testing
import VrulesTestSupport

/// `vrules reload` and `vrules status` against `vrules serve --control`, as the unit's
/// ExecReload runs the first and an operator the second.
@Suite("vrules reload and vrules status")
struct ReloadCommandTests {
    func rules(_ version: String) -> String {
        """
        return { rcpt = { rule("version", function(ctx) return reject(reply(550, "5.7.1", "\(version)")) end) } }
        """
    }

    @Test("reload says whether the new rules loaded: 0 and the new rules, or 1 with the errors and the running rules kept")
    func reloadOutcomes() async throws {
        let directory = try CLI.scratch(["main.lua": self.rules("v1"), "vrules.toml": "[limits]\nstage_timeout = \"5s\"\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("main.lua")
        let config = directory.appendingPathComponent("vrules.toml")
        let control = directory.appendingPathComponent("control.sock").path
        let metricsPort = try LoopbackPorts.free()
        let notify = try NotifySocket()
        let server = try ServeProcess(arguments: ["--config", config.path, "--rules", script.path, "--zone", "examples/example.zone",
                                                  "--control", control, "--metrics", "127.0.0.1:\(metricsPort)"], notify: notify)
        // Bound before READY=1, with only the server's user allowed in.
        var info = stat()
        #expect(lstat(control, &info) == 0 && info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("v1")) == "550 5.7.1 v1")
        let started = try CLI.run(["status", "--control", control])
        #expect(started.status == 0, "\(started.stderr)")
        let startLines = started.stdout.split(separator: "\n").map(String.init)
        #expect(startLines.count == 3, "\(started.stdout)")
        #expect(startLines.first?.hasPrefix("pid \(server.process.processIdentifier), serving since ") == true, "\(started.stdout)")
        #expect(startLines.first?.contains(" on 127.0.0.1:\(server.port) with ") == true, "\(started.stdout)")
        #expect(startLines.dropFirst().first?.hasPrefix("rules \(script.standardizedFileURL.path), loaded ") == true, "\(started.stdout)")
        #expect(startLines.dropFirst().first?.hasSuffix(" (start)") == true, "\(started.stdout)")
        #expect(startLines.last == "connections 1 open, transactions 1 held", "\(started.stdout)")
        let startJSON = try CLI.run(["status", "--json", "--control", control]).stdout
        #expect(startJSON.contains(#""loaded_by":"start""#) && !startJSON.contains("last_reload_failure"), "\(startJSON)")
        // The start's load counts as a successful one for an alert on failed reloads.
        let atStart = try await metricsText(URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        #expect(atStart.contains("vrules_policy_last_reload_successful 1"), "\(atStart)")
        #expect(atStart.contains("vrules_policy_last_reload_success_timestamp_seconds "), "\(atStart)")

        try self.rules("v2").write(to: script, atomically: true, encoding: .utf8)
        let reloaded = try CLI.run(["reload", "--control", control])
        #expect(reloaded.status == 0, "\(reloaded.stderr)")
        #expect(reloaded.stdout == "vrules: the rules and the configuration were reloaded\n")
        // The answer comes after the swap: the next request already gets the new rules.
        #expect(try client.ask(rcptRequest("v2")) == "550 5.7.1 v2")
        let status = try #require(notify.receive(until: "rules reloaded")?.last)
        #expect(status.contains(" (vrules reload); serving on 127.0.0.1:\(server.port) with "), "\(status)")

        try "return { rcpt = { rule(\"broken\", function(ctx) return end end) } }".write(to: script, atomically: true, encoding: .utf8)
        let failed = try CLI.run(["reload", "--control", control])
        #expect(failed.status == 1)
        #expect(failed.stdout == "")
        #expect(failed.stderr.hasPrefix("vrules: the new rules or configuration did not load; the running ones stay\n  "), "\(failed.stderr)")
        #expect(failed.stderr.contains("main.lua:1:"), "\(failed.stderr)")
        #expect(try client.ask(rcptRequest("kept")) == "550 5.7.1 v2")
        let afterFailed = try await metricsText(URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        #expect(afterFailed.contains("vrules_policy_last_reload_successful 0"), "\(afterFailed)")
        let failedStatus = try #require(notify.receive(until: "reload failed")?.last)
        #expect(failedStatus.contains(" (vrules reload), the running rules stay: "), "\(failedStatus)")
        let afterFailure = try CLI.run(["status", "--control", control]).stdout.split(separator: "\n").map(String.init)
        #expect(afterFailure.dropFirst().first?.hasSuffix(" (vrules reload)") == true, "\(afterFailure)")
        #expect(afterFailure.dropFirst(2).first?.hasPrefix("last reload failed at ") == true, "\(afterFailure)")
        #expect(afterFailure.dropFirst(2).first?.hasSuffix(" (vrules reload), the running rules stay:") == true, "\(afterFailure)")
        // The error as Lua gives it (a long path shortened to its end), indented under that line.
        let error = try #require(afterFailure.dropFirst(3).first)
        #expect(error.hasPrefix("  ") && error.contains("main.lua:1: ')' expected near 'end'"), "\(afterFailure)")
        #expect(afterFailure.last == "connections 1 open, transactions 1 held", "\(afterFailure)")
        // The same facts in JSON, for a script or a monitoring check.
        let json = try CLI.run(["status", "--json", "--control", control])
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout.hasSuffix("}\n") && json.stdout.split(separator: "\n").count == 1, "\(json.stdout)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
        #expect(object["pid"] as? Int == Int(server.process.processIdentifier), "\(json.stdout)")
        #expect(object["listening"] as? [String] == ["127.0.0.1:\(server.port)"], "\(json.stdout)")
        #expect(object["dry_run"] as? Bool == false && object["connections"] as? Int == 1 && object["transactions"] as? Int == 1,
                "\(json.stdout)")
        let rules = try #require(object["rules"] as? [String: Any], "\(json.stdout)")
        #expect(rules["path"] as? String == script.standardizedFileURL.path && rules["loaded_by"] as? String == "vrules reload",
                "\(json.stdout)")
        let failure = try #require(object["last_reload_failure"] as? [String: Any], "\(json.stdout)")
        #expect(failure["reason"] as? String == "vrules reload", "\(json.stdout)")
        #expect((failure["errors"] as? [String])?.first?.contains("main.lua:1: ')' expected near 'end'") == true, "\(json.stdout)")

        // An error quoting a bidirectional override and a C1 control from the script: the text
        // escapes them, and the JSON still reads back, holding them as they were.
        try "return \"x\" \"\u{202E}\u{85}\"\n".write(to: script, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["reload", "--control", control]).status == 1)
        let quoting = try CLI.run(["status", "--json", "--control", control]).stdout
        #expect(!quoting.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x85 }, "\(quoting)")
        let quoted = try #require(try JSONSerialization.jsonObject(with: Data(quoting.utf8)) as? [String: Any], "\(quoting)")
        let quotedErrors = (quoted["last_reload_failure"] as? [String: Any])?["errors"] as? [String]
        #expect(quotedErrors?.first?.contains("\"\u{202E}\u{85}\"") == true, "\(quoting)")
        #expect(try CLI.run(["status", "--control", control]).stdout.contains(#"\u{202E}\u{85}"#))

        // A configuration with a mistake fails the reload the same way, naming the key.
        try self.rules("v3").write(to: script, atomically: true, encoding: .utf8)
        try "[limits]\nstage_timeot = \"5s\"\n".write(to: config, atomically: true, encoding: .utf8)
        let badConfig = try CLI.run(["reload", "--control", control])
        #expect(badConfig.status == 1)
        #expect(badConfig.stderr.contains("limits.stage_timeot"), "\(badConfig.stderr)")
        #expect(try client.ask(rcptRequest("config")) == "550 5.7.1 v2")

        // A file that loads, with settings a reload cannot apply: reloaded, and said so.
        try "[policy]\nmax_connections = 7\n[limits]\nstage_timeout = \"5m\"\n".write(to: config, atomically: true, encoding: .utf8)
        let warned = try CLI.run(["reload", "--control", control])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stdout == """
            vrules: the rules and the configuration were reloaded
              warning: policy.max_connections changed in the configuration file (running (not set), file 7): it applies when vrules serve starts again, not on reload
              warning: [limits] stage_timeout = 300s is longer than Postfix waits for a policy answer by default (smtpd_policy_service_timeout = 100s): raise that in main.cf to match, or lower stage_timeout

            """, "\(warned.stdout)")
        #expect(try client.ask(rcptRequest("warned")) == "550 5.7.1 v3")

        let metrics = try await metricsText(URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        #expect(metrics.contains("vrules_policy_reloads_total{reason=\"control\"} 2"), "\(metrics)")
        #expect(metrics.contains("vrules_policy_reload_failures_total{reason=\"control\"} 3"), "\(metrics)")
        #expect(metrics.contains("vrules_policy_last_reload_successful 1"), "\(metrics)")
        let success = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("vrules_policy_last_reload_success_timestamp_seconds ") })
        let seconds = try #require(Double(success.split(separator: " ")[1]))
        #expect(abs(seconds - Date().timeIntervalSince1970) < 60, "\(success)")
        client.close()
        #expect(server.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: control), "the control socket is removed at stop")
        for command in ["reload", "status"] {
            let stopped = try CLI.run([command, "--control", control])
            #expect(stopped.status == 2 && stopped.stderr.contains("is vrules serve running with --control"), "\(command): \(stopped.stderr)")
        }
    }

    @Test("usage errors and no server to ask exit 2; the control socket needs a path of its own")
    func errors() throws {
        let directory = try CLI.scratch(["notasocket": "important\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let none = try CLI.run(["reload", "--control", directory.appendingPathComponent("none.sock").path])
        #expect(none.status == 2)
        #expect(none.stderr == "vrules: cannot reload: \(directory.path)/none.sock: no control socket there: "
            + "is vrules serve running with --control \(directory.path)/none.sock?\n", "\(none.stderr)")
        for command in ["reload", "status"] {
            for timeout in ["0", "-1", "nan", "3601"] {
                let bad = try CLI.run([command, "--timeout=\(timeout)"])
                #expect(bad.status == 2, "\(timeout): \(bad.stderr)")
                #expect(bad.stderr.hasPrefix("Error: --timeout: seconds from more than 0 to 3600"), "\(timeout): \(bad.stderr)")
            }
        }
        let long = "/tmp/" + String(repeating: "x", count: 120)
        let tooLong = try CLI.run(["serve", "--zone", "examples/example.zone", "--control", long])
        #expect(tooLong.status == 2)
        #expect(tooLong.stderr.hasPrefix("Error: --control: '\(long)': the path is too long for a socket (125 bytes; 107 at most)\n"),
                "\(tooLong.stderr)")
        let empty = try CLI.run(["serve", "--zone", "examples/example.zone", "--control", ""])
        #expect(empty.status == 2 && empty.stderr.hasPrefix("Error: --control: the path is empty\n"), "\(empty.stderr)")
        let shared = "\(directory.path)/policy.sock"
        let same = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "unix:\(shared)", "--control", shared])
        #expect(same.status == 2)
        #expect(same.stderr.hasSuffix("vrules: --control: \(shared) is also where the policy server listens; give the control socket a path of its own\n"),
                "\(same.stderr)")
        let file = directory.appendingPathComponent("notasocket").path
        for (path, reason) in [(file, "the path exists and is not a socket"),
                               ("\(directory.path)/missing/control.sock", "No such file or directory")] {
            let refused = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "127.0.0.1:0", "--control", path])
            #expect(refused.status == 2)
            #expect(refused.stderr.hasSuffix("vrules: cannot take vrules reload on unix:\(path): \(reason)\n"), "\(refused.stderr)")
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "important\n")
    }
}
