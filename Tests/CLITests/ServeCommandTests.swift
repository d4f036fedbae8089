import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import DNS
import DNSTestSupport
import Policy
import Rules
import Testing
import VrulesTestSupport

/// A `vrules serve` process on a free loopback port.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    /// What the server sent its service manager up to `READY=1` (with `notify` only).
    private(set) var startNotifications: [String] = []
    /// A file, not a pipe: the server logs a line per decision, and a full pipe would block it.
    let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-serve-\(UUID()).log")

    /// `launcher` runs the binary (e.g. `prlimit --nofile=64`), replacing itself by it;
    /// `environment` is added to the test's own. With `notify`, the server is started as
    /// systemd starts a `Type=notify` unit: `NOTIFY_SOCKET` names that socket, and the server
    /// counts as started when it says `READY=1` (the datagrams until then are in
    /// `startNotifications`), not when its port first accepts. With `journal`,
    /// `JOURNAL_STREAM` names the log file, as systemd names the journal's stream.
    init(arguments: [String], directory: URL = CLI.packageRoot, launcher: [String] = [],
         environment: [String: String] = [:], notify: NotifySocket? = nil, journal: Bool = false) throws {
        self.port = Int(try LoopbackPorts.free())
        let command = [CLI.binary.path, "serve", "--listen", "127.0.0.1:\(self.port)"] + arguments
        let full = launcher + command
        self.process.executableURL = URL(fileURLWithPath: full[0])
        self.process.arguments = Array(full.dropFirst())
        self.process.currentDirectoryURL = directory
        var environment = environment
        if let notify { environment["NOTIFY_SOCKET"] = notify.environmentValue }
        _ = FileManager.default.createFile(atPath: self.logURL.path, contents: nil)
        if journal {
            // As systemd names the journal stream it connects a unit's standard error to.
            var status = stat()
            stat(self.logURL.path, &status)
            environment["JOURNAL_STREAM"] = "\(status.st_dev):\(status.st_ino)"
        }
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        self.process.standardError = try FileHandle(forWritingTo: self.logURL)
        self.process.standardOutput = FileHandle.nullDevice
        try ChildProcess.start(self.process)
        if let notify {
            guard let received = notify.receive(until: "READY=1") else {
                self.process.terminate()
                throw PolicyClient.Failure(description: "vrules serve did not notify READY=1: \(self.log)")
            }
            self.startNotifications = received
            return
        }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if (try? PolicyClient(port: self.port)) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        self.process.terminate()
        throw PolicyClient.Failure(description: "vrules serve did not start listening")
    }

    func signal(_ number: Int32) { kill(self.process.processIdentifier, number) }

    /// SIGTERM and the exit status; -1 when the server did not stop within 10 s (it is then
    /// killed, and the harness says so).
    func stop() -> Int32 {
        guard ChildProcess.stop(self.process, name: "vrules serve") else { return -1 }
        return self.process.terminationStatus
    }

    var log: String { (try? String(contentsOf: self.logURL, encoding: .utf8)) ?? "" }

    /// Waits up to 15 s until the log holds `text` at least `count` times.
    func waitForLog(_ text: String, count: Int = 1) -> Bool {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if self.log.components(separatedBy: text).count - 1 >= count { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    deinit {
        if self.process.isRunning { self.process.terminate() }
        try? FileManager.default.removeItem(at: self.logURL)
    }
}

func rcptRequest(_ instance: String, client: String = "192.0.2.10", port: Int = 4000, state: String = "RCPT",
                 recipient: String = "bob@implicit.example") -> [String: String] {
    ["request": "smtpd_access_policy", "protocol_state": state, "client_address": client, "client_port": "\(port)",
     "helo_name": "mail.good.example", "sender": "alice@good.example", "recipient": recipient,
     "instance": instance]
}

/// The text a `vrules serve --metrics` endpoint serves.
func metricsText(_ url: URL) async throws -> String {
    let (body, _) = try await URLSession.shared.data(from: url)
    return String(decoding: body, as: UTF8.self)
}

@Suite("vrules serve", .serialized)
struct ServeCommandTests {
    func rules(_ version: String) -> String {
        """
        return { rcpt = { rule("version", function(ctx) return reject(reply(550, "5.7.1", "\(version)")) end) } }
        """
    }

    @Test("reload under load: a good new script is swapped in, a broken one is refused, no request fails")
    func reloadUnderLoad() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-serve-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("main.lua")
        try self.rules("v1").write(to: script, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["--rules", script.path, "--zone", "examples/example.zone"])

        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var answers: [String: Int] = [:]
            var failures: [String] = []
            var stop = false
            func add(_ answer: String?) {
                self.lock.lock(); defer { self.lock.unlock() }
                if let answer { self.answers[answer, default: 0] += 1 } else { self.failures.append("connection closed") }
            }
            func fail(_ error: Error) { self.lock.lock(); self.failures.append("\(error)"); self.lock.unlock() }
            var stopped: Bool { self.lock.lock(); defer { self.lock.unlock() }; return self.stop }
            func count(_ answer: String) -> Int { self.lock.lock(); defer { self.lock.unlock() }; return self.answers[answer] ?? 0 }
        }
        let tally = Tally()
        let port = server.port
        var threads: [Thread] = []
        let done = DispatchGroup()
        for worker in 0..<4 {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    let client = try PolicyClient(port: port)
                    client.setTimeout(seconds: 10)
                    var index = 0
                    while !tally.stopped {
                        index += 1
                        tally.add(try client.ask(rcptRequest("w\(worker)-\(index)", port: 5000 + worker)))
                    }
                } catch {
                    tally.fail(error)
                }
            }
            threads.append(thread)
            thread.start()
        }
        func waitFor(_ answer: String, timeout: Double = 15) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if tally.count(answer) > 50 { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
        #expect(waitFor("550 5.7.1 v1"))
        try self.rules("v2").write(to: script, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(waitFor("550 5.7.1 v2"))
        try "return { rcpt = { rule('broken', function(ctx) return accept( end) } }".write(to: script, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        Thread.sleep(forTimeInterval: 1)
        let before = tally.count("550 5.7.1 v2")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(tally.count("550 5.7.1 v2") > before)
        tally.lock.lock(); tally.stop = true; tally.lock.unlock()
        done.wait()
        #expect(tally.failures.isEmpty, "\(tally.failures)")
        #expect(Set(tally.answers.keys) == ["550 5.7.1 v1", "550 5.7.1 v2"])
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("rules reloaded"))
        #expect(log.contains("reload failed, keeping the running rules"))
    }

    @Test("serve answers with the default policy, logs one line per decision, serves metrics, stops on SIGTERM")
    func defaultPolicy() async throws {
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--zone", "examples/example.zone", "--metrics", "127.0.0.1:\(metricsPort)"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        // Accepted, with the default policy's headers, one per answer, each once.
        #expect(try client.ask(rcptRequest("a"))?.hasPrefix("PREPEND Received-SPF: none (") == true)
        let results = try client.ask(rcptRequest("a")) ?? ""
        #expect(results.hasPrefix("PREPEND Authentication-Results: "), "\(results)")
        #expect(results.hasSuffix("; iprev=pass policy.iprev=192.0.2.10; spf=none smtp.mailfrom=alice@good.example"), "\(results)")
        #expect(try client.ask(rcptRequest("a")) == "DUNNO")
        #expect(try client.ask(rcptRequest("b", client: "192.0.2.66")) == "550 5.7.25 Reverse DNS validation failed")
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        let metrics = String(decoding: data, as: UTF8.self)
        #expect(metrics.contains("vrules_policy_requests_total{stage=\"rcpt\"} 4"))  // three for "a" (two headers, then DUNNO), one for "b"
        #expect(metrics.contains("vrules_policy_verdicts_total{verdict=\"reject\"} 1"))
        #expect(metrics.contains("vrules_dns_queries_total{outcome=\"ok\"}"))
        #expect(metrics.contains("vrules_spf_results_total{result=\"none\"} 1"))  // the default policy's check at mail
        #expect(metrics.contains("vrules_spf_results_reused_total 0"))            // a zone file keeps no results
        #expect(metrics.contains("vrules_policy_request_duration_seconds_bucket"))
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("verdict=reject"))
        #expect(log.contains("policy server shutting down"))
    }

    @Test("dry run ([policy] dry_run or --dry-run): refusals are logged, counted and answered DUNNO, the status says so, a reload turns it off and on")
    func dryRun() async throws {
        let directory = try CLI.scratch(["vrules.toml": "[policy]\ndry_run = true\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml").path
        for arguments in [["--config", config], ["--dry-run"]] {
            let metricsPort = Int(try LoopbackPorts.free())
            let notify = try NotifySocket()
            let control = directory.appendingPathComponent("control.sock").path
            let server = try ServeProcess(arguments: arguments + ["--zone", "examples/example.zone", "--metrics", "127.0.0.1:\(metricsPort)",
                                                                  "--control", control], notify: notify)
            let ready = try #require(server.startNotifications.last)
            #expect(ready.hasSuffix(" rule engines, dry run: no mail is refused\n"), "\(ready)")
            let status = try CLI.run(["status", "--control", control]).stdout
            #expect(status.contains("\ndry run: refusals are logged and answered DUNNO; no mail is refused\n"), "\(status)")
            let client = try PolicyClient(port: server.port)
            client.setTimeout(seconds: 10)
            // Enforced, this client gets 550 5.7.25 (defaultPolicy above); the header the rule
            // added before it refused rides on the answer, as on any answer that is not a refusal.
            let refused = try client.ask(rcptRequest("b", client: "192.0.2.66"))
            #expect(refused?.hasPrefix("PREPEND Authentication-Results: ") == true
                    && refused?.hasSuffix("; iprev=fail policy.iprev=192.0.2.66") == true, "\(refused ?? "closed")")
            // Asked again from Postfix's next restriction list (enforced, the first answer
            // would have ended the recipient): DUNNO, and not a second refusal.
            #expect(try client.ask(rcptRequest("b", client: "192.0.2.66")) == "DUNNO")
            #expect(try client.ask(rcptRequest("a"))?.hasPrefix("PREPEND Received-SPF: none (") == true)
            let metrics = try await metricsText(URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
            #expect(metrics.contains("vrules_policy_dry_run_refusals_total{kind=\"permanent\"} 1"), "\(metrics)")
            #expect(metrics.contains("vrules_policy_verdicts_total{verdict=\"reject\"} 1"), "\(metrics)")
            #expect(server.stop() == 0)
            let log = server.log
            #expect(log.contains("dry run: refusals are logged and counted, and answered DUNNO; no mail is refused"), "\(log)")
            #expect(log.contains("would=550 5.7.25 Reverse DNS validation failed [Policy] dry run: answered DUNNO in place of a refusal"),
                    "\(log)")
            #expect(log.contains("rule=forward-confirmed reverse DNS stage=connect would="), "\(log)")
            #expect(log.components(separatedBy: "dry run: answered DUNNO in place of a refusal").count - 1 == 1, "\(log)")
        }
        // Watched, then enforced: the file changed and reloaded, no restart.
        let control = directory.appendingPathComponent("control.sock").path
        let notify = try NotifySocket()
        let server = try ServeProcess(arguments: ["--config", config, "--zone", "examples/example.zone", "--control", control], notify: notify)
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("c1", client: "192.0.2.66"))?.hasPrefix("PREPEND Authentication-Results: ") == true)
        try "[policy]\ndry_run = false\n".write(toFile: config, atomically: true, encoding: .utf8)
        let enforced = try CLI.run(["reload", "--control", control])
        #expect(enforced.status == 0, "\(enforced.stderr)")
        #expect(enforced.stdout.hasSuffix("\n  warning: dry run off from now on: the rules' refusals are sent\n"), "\(enforced.stdout)")
        #expect(try client.ask(rcptRequest("c2", client: "192.0.2.66")) == "550 5.7.25 Reverse DNS validation failed")
        let reloaded = try #require(notify.receive(until: "rules reloaded")?.last)
        #expect(!reloaded.contains("dry run"), "\(reloaded)")
        #expect(!(try CLI.run(["status", "--control", control]).stdout.contains("dry run")))
        try "[policy]\ndry_run = true\n".write(toFile: config, atomically: true, encoding: .utf8)
        let watched = try CLI.run(["reload", "--control", control])
        #expect(watched.stdout.hasSuffix(
            "\n  warning: dry run on from now on: refusals are logged and answered DUNNO, no mail is refused\n"), "\(watched.stdout)")
        #expect(try client.ask(rcptRequest("c3", client: "192.0.2.66"))?.hasPrefix("PREPEND Authentication-Results: ") == true)
        let again = try #require(notify.receive(until: "rules reloaded")?.last)
        #expect(again.contains(" rule engines, dry run: no mail is refused\n"), "\(again)")
        client.close()
        #expect(server.stop() == 0)

        try "[policy]\ndry_run = \"yes\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["serve", "--config", config, "--zone", "examples/example.zone"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("policy.dry_run"), "\(bad.stderr)")
    }

    /// `vrules serve` on `rules` (written to a scratch folder, removed by the caller) with a
    /// metrics endpoint, and a client.
    func serving(rules: String, arguments: [String] = []) throws -> (directory: URL, server: ServeProcess, client: PolicyClient, metrics: URL) {
        let directory = try CLI.scratch(["rules.lua": rules])
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--rules", directory.appendingPathComponent("rules.lua").path,
                                                  "--zone", "examples/example.zone", "--metrics", "127.0.0.1:\(metricsPort)"] + arguments)
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        return (directory, server, client, URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
    }

    @Test("headers go out one per answer before end of data; what is left at END-OF-MESSAGE is reported, not sent")
    func undeliveredHeaders() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            return { rcpt = { rule("three headers", function(ctx)
              ctx.add_header("X-One", "1")
              ctx.add_header("X-Two", "2")
              ctx.add_header("X-Three", "3")
            end) } }
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try client.ask(rcptRequest("h")) == "PREPEND X-One: 1")
        #expect(try client.ask(rcptRequest("h")) == "PREPEND X-Two: 2")
        let end = rcptRequest("h", state: "END-OF-MESSAGE")
        // Postfix ignores PREPEND at end of data (and logs a warning of its own).
        #expect(try client.ask(end) == "DUNNO")
        #expect(try await metricsText(metrics).contains("vrules_policy_headers_undelivered_total 1"))
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("headers the rules added did not reach the message"), "\(log)")
        #expect(log.contains("first=X-Three"), "\(log)")
    }

    /// The default policy adds its SPF headers before it decides, so that a dry run's message
    /// carries what the check found. Enforced, the refused transaction sends no message: its
    /// headers were kept and, when it ended, reported as undelivered with advice that did not fit.
    @Test("a refused transaction's headers: dropped when the refusal is sent, carried on a dry run's DUNNO answers")
    func headersOfARefusal() async throws {
        let rules = """
            return {
              mail = { rule("refuse", function(ctx)
                ctx.add_header("X-Check", "fail")
                ctx.add_header("X-Second", "2")
                if ctx.mail_from.local_part == "alice" then return reject(reply(550, "5.7.23", "no")) end
              end) },
              rcpt = { rule("one recipient", function(ctx)
                if ctx.rcpt.local_part == "nobody" then return reject(reply(550, "5.1.1", "unknown")) end
                ctx.add_header("X-Rcpt", ctx.rcpt.address)
              end) },
            }
            """
        let (directory, server, client, metrics) = try self.serving(rules: rules)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try client.ask(rcptRequest("r1")) == "550 5.7.23 no")
        #expect(try client.ask(rcptRequest("r1")) == "550 5.7.23 no")
        // The next transaction on the connection ends the refused one; a recipient refused
        // at rcpt keeps the transaction's headers for the recipients that follow.
        var other = rcptRequest("r2", recipient: "nobody@implicit.example")
        other["sender"] = "carol@good.example"
        #expect(try client.ask(other) == "550 5.1.1 unknown")
        other["recipient"] = "bob@implicit.example"
        #expect(try client.ask(other) == "PREPEND X-Check: fail")
        #expect(try client.ask(other) == "PREPEND X-Second: 2")
        #expect(try client.ask(other) == "PREPEND X-Rcpt: bob@implicit.example")
        #expect(try await metricsText(metrics).contains("vrules_policy_headers_undelivered_total 0"))
        #expect(server.stop() == 0)
        #expect(!server.log.contains("did not reach the message"), "\(server.log)")

        let (dryDirectory, dry, dryClient, dryMetrics) = try self.serving(rules: rules, arguments: ["--dry-run"])
        defer { try? FileManager.default.removeItem(at: dryDirectory) }
        #expect(try dryClient.ask(rcptRequest("d1")) == "PREPEND X-Check: fail")
        #expect(try dryClient.ask(rcptRequest("d1")) == "PREPEND X-Second: 2")
        // Held as refused at mail, as enforced: no rcpt stage ran, so no X-Rcpt.
        #expect(try dryClient.ask(rcptRequest("d1")) == "DUNNO")
        #expect(try dryClient.ask(rcptRequest("d1", state: "END-OF-MESSAGE")) == "DUNNO")
        let text = try await metricsText(dryMetrics)
        #expect(text.contains("vrules_policy_headers_undelivered_total 0"), "\(text)")
        #expect(text.contains(#"vrules_policy_dry_run_refusals_total{kind="permanent"} 1"#), "\(text)")
        #expect(dry.stop() == 0)
    }

    /// In a dry run, DATA after every recipient was refused ran the data rules with no
    /// recipient, which enforced never happens (the client gets no further), so the dry run
    /// logged refusals enforcement would never send; and a recipient refused by
    /// max_recipients was answered a bare DUNNO, so a waiting header missed its answer.
    @Test("dry run: DATA after every recipient was refused runs no rule, and every DUNNO answered for a refusal carries a header")
    func dryRunPastRefusedRecipients() async throws {
        let rules = """
            return {
              mail = { action("headers", function(ctx)
                ctx.add_header("X-One", "1") ctx.add_header("X-Two", "2") ctx.add_header("X-Three", "3")
              end) },
              rcpt = { rule("known", function(ctx)
                if ctx.rcpt.local_part == "nobody" then return reject(reply(550, "5.1.1", "unknown")) end
              end) },
              data = { rule("data", function(ctx)
                log.info("data rules ran with recipients:", #ctx.rcpts)
                return reject(reply(554, "5.7.1", "no"))
              end) },
            }
            """
        let settings = try CLI.scratch(["vrules.toml": "[policy]\nmax_recipients = 1\n"])
        defer { try? FileManager.default.removeItem(at: settings) }
        let (directory, server, client, metrics) = try self.serving(
            rules: rules, arguments: ["--dry-run", "--config", settings.appendingPathComponent("vrules.toml").path])
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = rcptRequest("every", recipient: "nobody@implicit.example")
        #expect(try client.ask(refused) == "PREPEND X-One: 1")
        var data = rcptRequest("every", state: "DATA", recipient: "")
        data["recipient_count"] = "1"   // the refused one, accepted by Postfix on the dry run's DUNNO
        #expect(try client.ask(data) == "PREPEND X-Two: 2")
        var end = rcptRequest("every", state: "END-OF-MESSAGE", recipient: "")
        end["recipient_count"] = "1"
        #expect(try client.ask(end) == "DUNNO")
        // Postfix accepted a second recipient without asking (a permit before the policy
        // service): enforced, the message would reach DATA, so the data rules run.
        #expect(try client.ask(rcptRequest("other", recipient: "nobody@implicit.example")) == "PREPEND X-One: 1")
        var otherData = rcptRequest("other", state: "DATA", recipient: "")
        otherData["recipient_count"] = "2"
        #expect(try client.ask(otherData) == "PREPEND X-Two: 2")
        // Past max_recipients: the refusal is answered DUNNO and carries the next header.
        #expect(try client.ask(rcptRequest("limit", recipient: "bob@implicit.example")) == "PREPEND X-One: 1")
        #expect(try client.ask(rcptRequest("limit", recipient: "carol@implicit.example")) == "PREPEND X-Two: 2")
        let text = try await metricsText(metrics)
        // nobody@ twice, and the data stage of "other".
        #expect(text.contains(#"vrules_policy_dry_run_refusals_total{kind="permanent"} 3"#), "\(text)")
        #expect(text.contains(#"vrules_policy_dry_run_refusals_total{kind="temporary"} 1"#), "\(text)")
        #expect(server.stop() == 0)
        #expect(server.log.components(separatedBy: "data rules ran").count == 2, "once, for \"other\": \(server.log)")
        #expect(server.log.contains("instance=other"), "\(server.log)")
        #expect(server.log.contains("would=550 5.1.1 unknown"), "\(server.log)")
    }

    /// A header added at preq was kept for an answer that cannot come, and its warning told
    /// the operator to name the service in smtpd_data_restrictions, which does not help.
    @Test("a header added at preq is reported at once, with what to do instead, and never sent")
    func headersAtEndOfData() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            return {
              data = { rule("on time", function(ctx) ctx.add_header("X-Data", "1") end) },
              preq = { rule("too late", function(ctx) ctx.add_header("X-Late", "1") end) },
            }
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = rcptRequest("late", state: "DATA")
        #expect(try client.ask(data) == "PREPEND X-Data: 1")
        let end = rcptRequest("late", state: "END-OF-MESSAGE")
        #expect(try client.ask(end) == "DUNNO")
        #expect(try await metricsText(metrics).contains("vrules_policy_headers_undelivered_total 1"))
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("headers added at preq cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data"), "\(log)")
        #expect(log.contains("first=X-Late"), "\(log)")
        #expect(!log.contains("did not reach the message"), "counted once, with the advice that fits: \(log)")
    }

    /// Headers waiting for an answer were kept without bound, outside the Lua state's cap.
    @Test("a transaction keeps at most 100 headers for delivery; the rest are counted as undelivered at once")
    func headersBounded() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            return { rcpt = { rule("many headers", function(ctx)
              for i = 1, 150 do ctx.add_header("X-N" .. i, "v") end
            end) } }
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        var answers: [String] = []
        for _ in 0..<120 { answers.append(try client.ask(rcptRequest("h")) ?? "closed") }
        #expect(answers.prefix(100) == ArraySlice((1...100).map { "PREPEND X-N\($0): v" }))
        #expect(answers.suffix(20).allSatisfy { $0 == "DUNNO" }, "\(answers.suffix(20))")
        #expect(try await metricsText(metrics).contains("vrules_policy_headers_undelivered_total 50"))
        #expect(server.stop() == 0)
        #expect(server.log.contains("first=X-N101"), "\(server.log)")
    }

    static let exampleZone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path

    /// `vrules serve` in `directory` (its vrules.toml and rules/main.lua) on the example zone,
    /// a client of it, and its metrics' address.
    func serveExample(in directory: URL, arguments: [String] = []) throws -> (server: ServeProcess, client: PolicyClient, metrics: URL) {
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--zone", Self.exampleZone, "--metrics", "127.0.0.1:\(metricsPort)"] + arguments,
                                      directory: directory)
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        return (server, client, URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
    }

    /// `vrules run` in `directory` on the example zone: a session from 192.0.2.10 to `recipients`.
    func runExample(in directory: URL, helo: String = "a.test", mailFrom: String = "a@a.test",
                    recipients: [String], arguments: [String] = []) throws -> CLI.Output {
        try CLI.run(["run", "--zone", Self.exampleZone, "--client-ip", "192.0.2.10", "--helo", helo, "--mail-from", mailFrom]
                    + recipients.flatMap { ["--rcpt", $0] } + arguments, in: directory)
    }

    @Test("[limits] log_lines bounds what the rules log per stage, in serve, run and test alike")
    func logLines() async throws {
        let directory = try CLI.scratch([
            "vrules.toml": "[limits]\nlog_lines = 3\n",
            "rules/main.lua": """
                return { rcpt = { rule("chatty", function(ctx)
                  for i = 1, 10 do log.info("line=" .. i) end
                end) } }
                """,
            "rules/tests/chatty_test.lua": """
                return { tests = {
                  { name = "third", client_ip = "192.0.2.10", helo = "a.test", mail_from = "a@a.test", rcpt = { "b@b.test" },
                    expect = { rcpt = "next" }, logs = { "line=3" } },
                  { name = "fourth", client_ip = "192.0.2.10", helo = "a.test", mail_from = "a@a.test", rcpt = { "b@b.test" },
                    expect = { rcpt = "next" }, logs = { "line=4" } },
                } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let dropped = "log lines past 3 in one stage are dropped ([limits] log_lines)"

        let (server, client, metrics) = try self.serveExample(in: directory)
        #expect(try client.ask(rcptRequest("l1")) == "DUNNO")
        #expect(try client.ask(rcptRequest("l2")) == "DUNNO")
        // Seven lines dropped per stage: the notice took the fourth's place.
        #expect(try await metricsText(metrics).contains("vrules_rules_log_lines_dropped_total 14"))
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.components(separatedBy: "line=3").count - 1 == 2, "\(log)")
        #expect(!log.contains("line=4"), "\(log)")
        #expect(log.components(separatedBy: dropped).count - 1 == 2, "one notice per stage: \(log)")

        let run = try self.runExample(in: directory, recipients: ["b@b.test"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("log.info [chatty]: line=3\n  log.warn [chatty]: \(dropped)\n"), "\(run.stdout)")
        #expect(!run.stdout.contains("line=4"))

        let test = try CLI.run(["test"], in: directory)
        #expect(test.status == 1)
        #expect(test.stdout.contains("ok - rules/tests/chatty_test.lua: third"), "\(test.stdout)")
        #expect(test.stdout.contains("FAIL - rules/tests/chatty_test.lua: fourth"), "\(test.stdout)")
        #expect(test.stdout.contains(dropped), "the failure shows the notice among the log lines: \(test.stdout)")
    }

    @Test("[limits] dns_calls bounds the DNS calls of a stage in serve and run alike")
    func dnsCalls() async throws {
        let directory = try CLI.scratch([
            "vrules.toml": "[limits]\ndns_calls = 2\n",
            "rules/main.lua": """
                return { rcpt = { rule("looping", function(ctx)
                  for i = 1, 3 do dns.lookup(ctx.rcpt.domain) end
                end) } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = "rules/main.lua:2: DNS calls past 2 in one stage ([limits] dns_calls)"

        let (server, client, metrics) = try self.serveExample(in: directory)
        #expect(try client.ask(rcptRequest("d1")) == "451 4.3.0 Local error in processing, try again later")
        #expect(try await metricsText(metrics).contains("vrules_rules_dns_calls_refused_total 1"))
        #expect(server.stop() == 0)
        #expect(server.log.contains(refused), "\(server.log)")

        let run = try self.runExample(in: directory, recipients: ["b@example.com"])
        #expect(run.stdout.contains("failure: rule 'looping': \(refused)"), "\(run.stdout)")
        #expect(run.stdout.components(separatedBy: "dns.lookup(example.com)").count - 1 == 2, "\(run.stdout)")
    }

    @Test("a transaction's share of [limits] memory refuses the same recipients in serve, run and test")
    func recipientBytes() throws {
        // 1 MiB of state: the held transactions may take 256 KiB, one transaction 16 KiB,
        // which long recipients fill long before max_recipients.
        let recipients = (1...20).map { "r" + String(format: "%02d", $0) + String(repeating: "0", count: 180) + "@example.com" }
        let directory = try CLI.scratch([
            "vrules.toml": "[limits]\nmemory = \"1MiB\"\n",
            "rules/main.lua": "return { rcpt = { rule(\"any\", function(ctx) end) } }\n",
            "rules/tests/share_test.lua": """
                return { tests = {
                  { name = "long recipients", client_ip = "192.0.2.10", helo = "mail.good.example", mail_from = "alice@good.example",
                    rcpt = { \(recipients.map { "\"\($0)\"" }.joined(separator: ", ")) },
                    expect = { rcpt = { \((Array(repeating: "\"next\"", count: 9) + Array(repeating: "\"452 4.5.3\"", count: 11)).joined(separator: ", ")) } } },
                } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }

        let (server, client, _) = try self.serveExample(in: directory)
        var served: [String] = []
        for recipient in recipients {
            served.append(try client.ask(rcptRequest("share", recipient: recipient)) ?? "closed")
        }
        #expect(server.stop() == 0)
        #expect(served == Array(repeating: "DUNNO", count: 9) + Array(repeating: "452 4.5.3 Too many recipients", count: 11))

        let run = try self.runExample(in: directory, helo: "mail.good.example", mailFrom: "alice@good.example", recipients: recipients)
        let verdicts = run.stdout.split(separator: "\n").filter { $0.hasPrefix("rcpt: ") }
        #expect(verdicts == Array(repeating: "rcpt: next 250 2.1.5 Recipient ok", count: 9)
            + Array(repeating: "rcpt: defer 452 4.5.3 Too many recipients", count: 11), "\(run.stdout)")

        let test = try CLI.run(["test"], in: directory)
        #expect(test.status == 0, "\(test.stdout)")
    }

    /// A message gets one header per answer at RCPT and DATA; `vrules test` passed a test that
    /// expected a third header of a one-recipient message, which `serve` could not deliver.
    @Test("headers past the answers that can carry them are not on the message, in serve, run and test alike")
    func headersPerAnswer() async throws {
        let directory = try CLI.scratch([
            "rules/main.lua": """
                return { rcpt = { rule("three headers", function(ctx)
                  ctx.add_header("X-One", "1") ctx.add_header("X-Two", "2") ctx.add_header("X-Three", "3")
                end) } }
                """,
            "rules/tests/headers_test.lua": """
                return { tests = {
                  { name = "one recipient, two answers", client_ip = "192.0.2.10", helo = "a.test", mail_from = "a@a.test",
                    rcpt = { "b@example.com" }, expect = { rcpt = "next" }, headers = { "X-Two: 2", "X-Three: 3" } },
                  { name = "two recipients, three answers", client_ip = "192.0.2.10", helo = "a.test", mail_from = "a@a.test",
                    rcpt = { "b@example.com", "c@example.com" }, expect = { rcpt = "next" }, headers = { "X-Three: 3" } },
                } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let (server, client, _) = try self.serveExample(in: directory)
        func ask(_ instance: String, _ state: String, _ recipient: String = "b@example.com") throws -> String {
            try client.ask(rcptRequest(instance, state: state, recipient: recipient)) ?? "closed"
        }
        #expect(try [ask("one", "RCPT"), ask("one", "DATA"), ask("one", "END-OF-MESSAGE")]
                == ["PREPEND X-One: 1", "PREPEND X-Two: 2", "DUNNO"])
        #expect(try [ask("two", "RCPT"), ask("two", "RCPT", "c@example.com"), ask("two", "DATA"), ask("two", "END-OF-MESSAGE")]
                == ["PREPEND X-One: 1", "PREPEND X-Two: 2", "PREPEND X-Three: 3", "DUNNO"])
        #expect(server.stop() == 0)

        let one = try self.runExample(in: directory, recipients: ["b@example.com"])
        #expect(one.stdout.contains("  header X-Three: 3 (not on the message: \(HeaderDelivery.noAnswerAdvice))\n"), "\(one.stdout)")
        #expect(one.stdout.hasSuffix("session completed\nX-One: 1\nX-Two: 2\n"), "\(one.stdout)")
        let two = try self.runExample(in: directory, recipients: ["b@example.com", "c@example.com"])
        #expect(two.stdout.hasSuffix("session completed\nX-One: 1\nX-Two: 2\nX-Three: 3\n"), "\(two.stdout)")
        let json = try CLI.run(["run", "--json", "--zone", Self.exampleZone, "--client-ip", "192.0.2.10", "--helo", "a.test",
                                "--mail-from", "a@a.test", "--rcpt", "b@example.com"], in: directory)
        #expect(json.stdout.contains("\"reason\" : \"no answer was left to carry it"), "\(json.stdout)")

        let test = try CLI.run(["test"], in: directory)
        #expect(test.status == 1)
        #expect(test.stdout.contains("FAIL - rules/tests/headers_test.lua: one recipient, two answers"), "\(test.stdout)")
        #expect(test.stdout.contains("""
            no header on the message contains "X-Three: 3": "X-Three: 3" is not on it (no answer was left to carry it
            """), "\(test.stdout)")
        #expect(test.stdout.contains("ok - rules/tests/headers_test.lua: two recipients, three answers"), "\(test.stdout)")
    }

    @Test("--accept-action OK: an accepted recipient's answer carries no header, in serve, run and test alike")
    func headersUnderAcceptOK() async throws {
        let directory = try CLI.scratch([
            "rules/main.lua": """
                return { rcpt = { rule("accepting", function(ctx)
                  ctx.add_header("X-One", "1") ctx.add_header("X-Two", "2")
                  return accept()
                end) } }
                """,
            "rules/tests/headers_test.lua": """
                return { tests = {
                  { name = "both headers", client_ip = "192.0.2.10", helo = "a.test", mail_from = "a@a.test",
                    rcpt = { "b@example.com" }, expect = { rcpt = "accept" }, headers = { "X-One: 1", "X-Two: 2" } },
                } }
                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        for (action, answers) in [("DUNNO", ["PREPEND X-One: 1", "PREPEND X-Two: 2", "DUNNO"]), ("OK", ["OK", "PREPEND X-One: 1", "DUNNO"])] {
            let (server, client, _) = try self.serveExample(in: directory, arguments: ["--accept-action", action])
            var got: [String] = []
            for state in ["RCPT", "DATA", "END-OF-MESSAGE"] {
                got.append(try client.ask(rcptRequest(action, state: state, recipient: "b@example.com")) ?? "closed")
            }
            #expect(got == answers, "--accept-action \(action)")
            #expect(server.stop() == 0)
        }
        let dunno = try self.runExample(in: directory, recipients: ["b@example.com"])
        #expect(dunno.stdout.hasSuffix("session completed\nX-One: 1\nX-Two: 2\n"), "\(dunno.stdout)")
        let ok = try self.runExample(in: directory, recipients: ["b@example.com"], arguments: ["--accept-action", "OK"])
        #expect(ok.stdout.contains("  header X-Two: 2 (not on the message: \(HeaderDelivery.noAnswerAdvice))\n"), "\(ok.stdout)")
        #expect(ok.stdout.hasSuffix("session completed\nX-One: 1\n"), "\(ok.stdout)")
        #expect(try CLI.run(["test"], in: directory).status == 0)
        let test = try CLI.run(["test", "--accept-action", "OK"], in: directory)
        #expect(test.status == 1)
        #expect(test.stdout.contains("no header on the message contains \"X-Two: 2\": \"X-Two: 2\" is not on it (no answer was left"),
                "\(test.stdout)")
        let bad = try CLI.run(["run", "--accept-action", "REJECT"])
        #expect(bad.status == 2)
        #expect(bad.stderr.hasPrefix("Error: --accept-action: expected DUNNO or OK"), "\(bad.stderr)")
    }

    @Test("each log entry is one line, whatever a rule logs")
    func oneLineLogs() throws {
        let directory = try CLI.scratch(["odd.lua": """
            return { rcpt = { rule("odd\\nrule", function(ctx)
              log.warn("a\\27[2Jb\\nforged entry")
              return next()
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServeProcess(arguments: ["--rules", directory.appendingPathComponent("odd.lua").path,
                                                  "--zone", "examples/example.zone"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("a")) == "DUNNO")
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("a\\u{1B}[2Jb\\nforged entry"), "\(log)")
        // The rule's name is metadata of the entry: escaped the same way.
        #expect(log.contains("rule=odd\\nrule"), "\(log)")
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("rule") })
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("forged entry") })
        #expect(!log.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    @Test("[policy] listen and [limits] come from vrules.toml; a bad key is refused with its path")
    func configurationFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = Int(try LoopbackPorts.free())
        let config = directory.appendingPathComponent("vrules.toml")
        try "[policy]\nlisten = [\"127.0.0.1:\(port)\"]\n[limits]\ninstructions = 100000\nstage_timeout = \"2s\"\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let script = directory.appendingPathComponent("main.lua")
        try "return { rcpt = { rule('spin', function() while true do end end) } }".write(to: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["serve", "--config", config.path, "--rules", script.path, "--zone", "examples/example.zone"]
        process.currentDirectoryURL = CLI.packageRoot
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcess.start(process)
        defer { ChildProcess.stop(process, name: "vrules serve") }
        var client: PolicyClient?
        for _ in 0..<200 where client == nil {
            client = try? PolicyClient(port: port)
            if client == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        let connected = try #require(client)
        connected.setTimeout(seconds: 10)
        #expect(try connected.ask(rcptRequest("spin")) == "451 4.3.0 Local error in processing, try again later")

        try "[limits]\ninstrucions = 5\n".write(to: config, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["serve", "--config", config.path, "--zone", "examples/example.zone"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("limits.instrucions"), "\(bad.stderr)")
        #expect(bad.stderr.contains("instructions"))
        let missing = try CLI.run(["run", "--config", directory.appendingPathComponent("nope.toml").path, "--zone", "examples/example.zone"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nope.toml"))
    }

    @Test("[policy] max_recipients, unknown_state_action and max_connections apply; their warnings show at --log-level warning")
    func policyLimitsFromConfiguration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-policy-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        try """
            [policy]
            max_recipients = 2
            max_connections = 1
            unknown_state_action = "550 5.7.0 Unknown state here"
            """.write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["--config", config.path, "--zone", "examples/example.zone", "--log-level", "warning"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("m"))?.hasPrefix("PREPEND Received-SPF: ") == true)
        var second = rcptRequest("m")
        second["recipient"] = "carol@implicit.example"
        #expect(try client.ask(second)?.hasPrefix("PREPEND Authentication-Results: ") == true)
        var third = rcptRequest("m")
        third["recipient"] = "dave@implicit.example"
        #expect(try client.ask(third) == "452 4.5.3 Too many recipients")
        let unknown = rcptRequest("u", state: "SOMETHING-NEW")
        #expect(try client.ask(unknown) == "550 5.7.0 Unknown state here")
        // One connection at a time: a second one waits while the first is open.
        let waiting = try PolicyClient(port: server.port)
        waiting.setTimeout(seconds: 1)
        #expect(throws: (any Error).self) { try waiting.ask(rcptRequest("w")) }
        #expect(server.stop() == 0)
        let log = server.log
        #expect(log.contains("recipient refused"), "\(log)")
        #expect(log.contains("unknown protocol_state"), "\(log)")
        #expect(log.contains("policy connection limit reached"), "\(log)")
        #expect(!log.contains("decision"), "info lines stay off at warning level")

        try "[policy]\nunknown_state_action = \"OK then\"\n".write(to: config, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["serve", "--config", config.path, "--zone", "examples/example.zone"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("policy.unknown_state_action"), "\(bad.stderr)")
    }

    @Test("[policy] socket_mode and socket_group apply to the UNIX socket, never over another file; an unknown group is refused")
    func unixSocketAccess() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-sock-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        try "[policy]\nsocket_mode = \"0660\"\nsocket_group = \"postfix\"\n".write(to: config, atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("policy.sock").path
        let server = try ServeProcess(arguments: ["--config", config.path, "--zone", "examples/example.zone", "--listen", "unix:\(path)"])
        // The listeners are bound one after the other: the TCP one ServeProcess waits for first.
        var info = stat()
        let deadline = Date().addingTimeInterval(10)
        while stat(path, &info) != 0 && Date() < deadline { usleep(10_000) }
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(info.st_gid == getgrnam("postfix")?.pointee.gr_gid)
        let client = try PolicyClient(unixPath: path)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("s"))?.hasPrefix("PREPEND Received-SPF: ") == true)
        #expect(server.stop() == 0)

        // With a mode, the socket is bound under a temporary name and renamed into place:
        // a file that is not a socket must stop that rename, not be replaced by it.
        let file = directory.appendingPathComponent("notasocket").path
        try "important\n".write(toFile: file, atomically: true, encoding: .utf8)
        let overFile = try CLI.run(["serve", "--config", config.path, "--zone", "examples/example.zone", "--listen", "unix:\(file)"])
        #expect(overFile.status == 2)
        #expect(overFile.stderr.hasSuffix("vrules: cannot listen on unix:\(file): the path exists and is not a socket\n"), "\(overFile.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "important\n")

        try "[policy]\nsocket_group = \"no-such-group-here\"\n".write(to: config, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["serve", "--config", config.path, "--zone", "examples/example.zone", "--listen", "unix:\(path)"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("policy.socket_group: no group 'no-such-group-here' on this machine"), "\(bad.stderr)")
        // vrules check warns of the same file (a warning: it may be checked on another machine).
        let checked = try CLI.run(["check", "--config", config.path, "rules/main.lua"])
        #expect(checked.stdout == "\(config.path):2:1: warning: policy.socket_group: no group 'no-such-group-here' on this machine: "
            + "vrules serve here refuses to start [unknown-socket-group]\n", "\(checked.stdout)")
        #expect(checked.status == 0)
        try "[policy]\nsocket_group = \"0\"\n".write(to: config, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["check", "--config", config.path, "rules/main.lua"]).stdout == "", "a group number is taken as it is")
        try "[policy]\nsocket_mode = \"0999\"\n".write(to: config, atomically: true, encoding: .utf8)
        let badMode = try CLI.run(["serve", "--config", config.path, "--zone", "examples/example.zone"])
        #expect(badMode.status == 2)
        #expect(badMode.stderr.contains("policy.socket_mode"), "\(badMode.stderr)")
    }

    @Test("a SIGTERM as soon as the socket accepts stops the server gracefully; an address in use exits with 2")
    func earlyStopAndAddressInUse() throws {
        for _ in 0..<3 {
            let server = try ServeProcess(arguments: ["--zone", "examples/example.zone"])
            #expect(server.stop() == 0)
        }
        let server = try ServeProcess(arguments: ["--zone", "examples/example.zone"])
        let taken = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "127.0.0.1:\(server.port)"])
        #expect(taken.status == 2)
        #expect(taken.stderr.hasSuffix("vrules: cannot listen on 127.0.0.1:\(server.port): Address already in use\n"), "\(taken.stderr)")
        let metrics = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "127.0.0.1:0",
                                   "--metrics", "127.0.0.1:\(server.port)"])
        #expect(metrics.status == 2)
        #expect(metrics.stderr.hasSuffix("vrules: cannot serve metrics on 127.0.0.1:\(server.port): Address already in use\n"),
                "\(metrics.stderr)")
        #expect(server.stop() == 0)
    }

    @Test("a listen address that cannot be bound is named with the reason, and a file in the socket's place is left alone")
    func unusableListenAddresses() throws {
        let directory = try CLI.scratch(["notasocket": "important\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("notasocket").path
        let long = "/tmp/" + String(repeating: "x", count: 120)
        for (address, reason) in [("unix:\(file)", "the path exists and is not a socket"),
                                  ("unix:\(directory.path)/missing/policy.sock", "No such file or directory"),
                                  ("192.0.2.1:10040", "Cannot assign requested address")] {
            let refused = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "127.0.0.1:0", "--listen", address])
            #expect(refused.status == 2)
            #expect(refused.stderr.hasSuffix("vrules: cannot listen on \(address): \(reason)\n"), "\(refused.stderr)")
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "important\n")
        // Known before binding: refused as the option is read, as `vrules check` refuses it in the file.
        let tooLong = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "unix:\(long)"])
        #expect(tooLong.status == 2)
        #expect(tooLong.stderr.hasPrefix("Error: --listen: 'unix:\(long)': the path is too long for a socket (125 bytes; 107 at most)\n"),
                "\(tooLong.stderr)")
    }

    @Test("at the descriptor limit the server backs off instead of spinning in accept, and serves again after")
    func descriptorLimit() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            Issue.record("prlimit (Debian package util-linux) is missing")
            return
        }
        let server = try ServeProcess(arguments: ["--zone", "examples/example.zone", "--log-level", "error"],
                                      launcher: ["/usr/bin/prlimit", "--nofile=64:64", "--"])
        var clients: [PolicyClient] = []
        for _ in 0..<120 { clients.append(try PolicyClient(port: server.port)) }
        Thread.sleep(forTimeInterval: 0.5)
        let before = try Self.cpuSeconds(of: server.process.processIdentifier)
        Thread.sleep(forTimeInterval: 2)
        let used = try Self.cpuSeconds(of: server.process.processIdentifier) - before
        #expect(used < 0.5, "the server used \(used) s of CPU in 2 s with accept failing (EMFILE)")
        clients.removeAll()
        // Accepting resumes: the backlog's connections are taken and closed, then a new one is served.
        var answer: String?
        let deadline = Date().addingTimeInterval(10)
        while answer == nil && Date() < deadline {
            let client = try PolicyClient(port: server.port)
            client.setTimeout(seconds: 3)
            answer = try? client.ask(rcptRequest("after"))
        }
        #expect(answer?.hasPrefix("PREPEND Received-SPF: ") == true, "\(answer ?? "no answer")")
        #expect(server.stop() == 0)
    }

    /// User and system CPU time of a process, from /proc.
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
        let ticks = Double(fields[11])! + Double(fields[12])!
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test("metrics count SPF results by result, and the results reused from an earlier check")
    func spfMetrics() async throws {
        let dns = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: [
            DNSRecord(name: "good.example", ttl: 300, data: .txt([Array("v=spf1 ip4:192.0.2.10 -all".utf8)])),
        ]))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-spf-metrics-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        try "[server.dns]\ntype = \"custom\"\nservers = [\"127.0.0.1:\(dns.address.port)\"]\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let script = directory.appendingPathComponent("spf.lua")
        try """
            return { rcpt = { rule("SPF", function(ctx)
              if spf.check(ctx).result == "fail" then return reject(replies.spf_fail) end
            end) } }
            """.write(to: script, atomically: true, encoding: .utf8)
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--config", config.path, "--rules", script.path,
                                                  "--metrics", "127.0.0.1:\(metricsPort)"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        // Two messages from the permitted client (the second takes the first's result), one
        // from another client.
        #expect(try client.ask(rcptRequest("a", port: 4001)) == "DUNNO")
        #expect(try client.ask(rcptRequest("b", port: 4002)) == "DUNNO")
        #expect(try client.ask(rcptRequest("c", client: "192.0.2.66", port: 4003)) == "550 5.7.23 SPF validation failed")
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        let metrics = String(decoding: data, as: UTF8.self)
        #expect(metrics.contains("vrules_spf_results_total{result=\"pass\"} 2"), "\(metrics)")
        #expect(metrics.contains("vrules_spf_results_total{result=\"fail\"} 1"))
        #expect(metrics.contains("vrules_spf_results_total{result=\"temperror\"} 0"))
        #expect(metrics.contains("vrules_spf_results_reused_total 1"))
        #expect(dns.queries.count == 1)
        #expect(server.stop() == 0)
        await dns.stop()
    }

    @Test("serve runs one event loop per CPU it may run on (taskset), or as many as NIO_SINGLETON_GROUP_LOOP_COUNT says")
    func eventLoopsFollowAffinity() async throws {
        // The first CPU this test may use (a container's cpuset may leave out CPU 0).
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let allowed = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
        let cpu = try #require(allowed?.dropFirst("Cpus_allowed_list:".count).drop { $0 == "\t" || $0 == " " }
            .prefix { $0.isNumber })
        let cases: [(environment: [String: String], loops: Int)] = [([:], 1), (["NIO_SINGLETON_GROUP_LOOP_COUNT": "3"], 3)]
        for (environment, loops) in cases {
            let metricsPort = Int(try LoopbackPorts.free())
            let server = try ServeProcess(arguments: ["--zone", "examples/example.zone", "--metrics", "127.0.0.1:\(metricsPort)"],
                                          launcher: ["/usr/bin/taskset", "-c", String(cpu)], environment: environment)
            let client = try PolicyClient(port: server.port)
            client.setTimeout(seconds: 10)
            #expect(try client.ask(rcptRequest("a"))?.hasPrefix("PREPEND Received-SPF: none (") == true)
            let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
            let metrics = String(decoding: data, as: UTF8.self)
            let gauge = metrics.split(separator: "\n").first { $0.hasPrefix("vrules_policy_event_loops ") }
            #expect(gauge.flatMap { Double($0.split(separator: " ")[1]) } == Double(loops), "\(metrics)")
            // The loops' threads themselves (taskset execs the server: the same process).
            let tasks = "/proc/\(server.process.processIdentifier)/task"
            let names = try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap {
                try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8)
            }
            #expect(names.filter { $0.hasPrefix("NIO-SGLTN-") }.count == loops, "\(names)")
            #expect(server.stop() == 0)
            #expect(server.log.contains("event_loops=\(loops)"), "\(server.log)")
        }
    }

    /// A script that keeps what it sees in a table of its own fills its Lua state; evicting
    /// held transactions frees nothing of that, and every later stage failed with a memory
    /// error (451 to all mail) until someone sent SIGHUP.
    @Test("rules that fill their memory with their own data are loaded again, and mail is answered again")
    func rulesMemoryFull() async throws {
        let directory = try CLI.scratch([
            "leak.lua": """
            local seen = {}
            return { rcpt = { rule("remember", function(ctx)
              if ctx.rcpt.local_part == "big" then local s = string.rep("x", 32 << 20) end
              seen[#seen + 1] = string.rep(ctx.rcpt.address, 200)
            end) } }
            """,
            "vrules.toml": "[limits]\nmemory = \"8MiB\"\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let metricsPort = Int(try LoopbackPorts.free())
        let server = try ServeProcess(arguments: ["--config", directory.appendingPathComponent("vrules.toml").path,
                                                  "--rules", directory.appendingPathComponent("leak.lua").path,
                                                  "--zone", "examples/example.zone", "--metrics", "127.0.0.1:\(metricsPort)"],
                                      environment: ["NIO_SINGLETON_GROUP_LOOP_COUNT": "1"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        // A stage that asks for too much at once fails alone: what stays after it is small.
        var big = rcptRequest("big")
        big["recipient"] = "big@implicit.example"
        #expect(try client.ask(big) == "451 4.3.0 Local error in processing, try again later")
        #expect(try client.ask(rcptRequest("after-big")) == "DUNNO")
        var answers: [String] = []
        for index in 0..<3_000 { answers.append(try client.ask(rcptRequest("t\(index)")) ?? "closed") }
        let firstFailure = answers.firstIndex { $0.hasPrefix("451 4.3.0") }
        #expect(firstFailure != nil, "the script never filled its memory")
        #expect(answers.suffix(300).allSatisfy { $0 == "DUNNO" }, "\(answers.suffix(300).filter { $0 != "DUNNO" }.count) not DUNNO")
        let log = server.log
        #expect(log.components(separatedBy: "the rules' memory stays full: loading the rule engines again").count - 1 == 1, "\(log)")
        #expect(log.contains("reason=rules memory full"), "\(log)")
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!)
        #expect(String(decoding: data, as: UTF8.self).contains("vrules_policy_reloads_total{reason=\"memory\"} 1"))
        #expect(server.stop() == 0)
    }

    /// A reload applies rules, resolvers and [limits]; [policy] settings shape what was made at
    /// start, and a change to one of them was taken in silence.
    @Test("a reload applies max_recipients and unknown_state_action, and names each [policy] setting whose change waits for a restart; --listen on the command line wins")
    func reloadNamesSettingsFixedAtStart() throws {
        let directory = try CLI.scratch(["vrules.toml": "[policy]\nlisten = [\"127.0.0.1:1\"]\nmax_connections = 100\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        let server = try ServeProcess(arguments: ["--config", config.path, "--zone", "examples/example.zone"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("before", state: "UNHEARD-OF")) == "451 4.3.0 Unknown policy protocol state, try again later")
        try """
            [policy]
            listen = ["127.0.0.1:2"]
            max_connections = 5
            max_recipients = 2
            unknown_state_action = "DUNNO"
            [limits]
            stage_timeout = "2s"

            """.write(to: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(server.waitForLog("rules reloaded"))
        let log = server.log
        let warning = "a setting changed in the configuration file applies when vrules serve starts again, not on reload"
        #expect(log.contains("file=5 key=policy.max_connections running=100 [vrules] \(warning)"), "\(log)")
        #expect(!log.contains("key=policy.listen"), "\(log)")
        #expect(log.components(separatedBy: warning).count - 1 == 1, "\(log)")
        // Still serving on the address it started with; how requests are answered is the file's now.
        #expect(try client.ask(rcptRequest("after", state: "UNHEARD-OF")) == "DUNNO")
        for (index, expected) in [(1, false), (2, false), (3, true)] {
            let answer = try client.ask(rcptRequest("many", recipient: "r\(index)@implicit.example")) ?? ""
            #expect(answer.hasPrefix("452 4.5.3") == expected, "recipient \(index): \(answer)")
        }
        #expect(server.stop() == 0)
    }

    @Test("under a service manager (Type=notify): ready once it listens, reloading and ready around a reload, a failed reload in the status, watchdog pings, stopping")
    func serviceManagerNotifications() throws {
        let directory = try CLI.scratch(["main.lua": self.rules("v1")])
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("main.lua")
        let notify = try NotifySocket()
        let server = try ServeProcess(arguments: ["--rules", script.path, "--zone", "examples/example.zone"],
                                      environment: ["WATCHDOG_USEC": "200000"], notify: notify)
        // READY=1 comes once the listener is bound: the port accepts at once, with no retry.
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("ready")) == "550 5.7.1 v1")
        let ready = try #require(server.startNotifications.last)
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving on 127.0.0.1:\(server.port) with "), "\(ready)")
        #expect(ready.hasSuffix(" rule engines\n"), "\(ready)")
        #expect(server.startNotifications.dropLast().allSatisfy { $0 == "WATCHDOG=1\n" }, "\(server.startNotifications)")
        #expect(notify.receive(until: "WATCHDOG=1") != nil, "no watchdog ping")

        try self.rules("v2").write(to: script, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        let reloading = try #require(notify.receive(until: "RELOADING=1")?.last)
        #expect(reloading.contains("\nMONOTONIC_USEC="), "\(reloading)")
        #expect(reloading.hasSuffix("\nSTATUS=reloading the rules (SIGHUP)\n"), "\(reloading)")
        let reloaded = try #require(notify.receive(until: "READY=1")?.last)
        #expect(reloaded.contains("STATUS=rules reloaded at "), "\(reloaded)")
        #expect(reloaded.hasSuffix(" (SIGHUP); serving on 127.0.0.1:\(server.port) with \(ready.split(separator: " ")[4]) rule engines\n"),
                "\(reloaded)")
        #expect(try client.ask(rcptRequest("reloaded")) == "550 5.7.1 v2")

        try "return { rcpt = { rule(\"broken\", function(ctx) return end end) } }".write(to: script, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        let failed = try #require(notify.receive(until: "reload failed")?.last)
        #expect(failed.hasPrefix("READY=1\nSTATUS=reload failed at "), "\(failed)")
        #expect(failed.contains(" (SIGHUP), the running rules stay: ") && failed.contains("main.lua:1:"), "\(failed)")
        #expect(failed.split(separator: "\n").count == 2, "the error is one status line: \(failed)")
        #expect(try client.ask(rcptRequest("kept")) == "550 5.7.1 v2")

        server.signal(SIGTERM)
        let stopping = try #require(notify.receive(until: "STOPPING=1")?.last)
        #expect(stopping == "STOPPING=1\nSTATUS=stopping: answering what the open connections sent\n")
        client.close()
        #expect(server.stop() == 0)
        #expect(server.log.contains("interval=0.1 seconds [vrules] pinging the service manager's watchdog"), "\(server.log)")
        #expect(!server.log.contains(" warning "), "\(server.log)")
    }

    @Test("a NOTIFY_SOCKET or WATCHDOG_USEC that cannot be used is logged, and the server serves all the same")
    func unusableServiceManager() throws {
        for (environment, warning) in [
            (["NOTIFY_SOCKET": "run/notify"],
             "error=NOTIFY_SOCKET='run/notify': neither an absolute path nor @ and an abstract name [vrules] the service manager will not be notified"),
            (["NOTIFY_SOCKET": "/nonexistent/notify"],
             "error=sendto: No such file or directory socket=/nonexistent/notify [ServiceManager] cannot notify the service manager "
             + "(NOTIFY_SOCKET); later failures are logged at debug level"),
        ] {
            let server = try ServeProcess(arguments: ["--zone", "examples/example.zone"], environment: environment)
            let client = try PolicyClient(port: server.port)
            client.setTimeout(seconds: 10)
            #expect(try client.ask(rcptRequest("served")) != nil)
            #expect(server.waitForLog(warning), "\(server.log)")
            #expect(server.stop() == 0)
        }
        let notify = try NotifySocket(.abstract)
        let server = try ServeProcess(arguments: ["--zone", "examples/example.zone"], environment: ["WATCHDOG_USEC": "15s"], notify: notify)
        #expect(server.startNotifications.count == 1, "no watchdog ping: \(server.startNotifications)")
        #expect(server.log.contains("error=WATCHDOG_USEC='15s': not a positive number of microseconds [vrules] the service manager's watchdog will not be pinged"),
                "\(server.log)")
        #expect(server.stop() == 0)
    }

    @Test("each rule's decisions are counted by verdict; a rule name of any bytes stays one metric line")
    func ruleDecisionMetrics() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            return { rcpt = {
              rule("refuse \\"quoted\\" \\\\ and\\nbroken", function(ctx)
                if ctx.rcpt.local_part == "no" then return reject(reply(550, "5.7.1", "no")) end
              end),
              rule("hold", function(ctx) if ctx.rcpt.local_part == "later" then return defer() end end),
              rule("broken", function(ctx) if ctx.rcpt.local_part == "oops" then error("oops") end end),
              rule("welcome", function(ctx) return accept() end),
            } }
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (index, recipient) in ["no", "no", "later", "oops", "yes", "yes", "yes"].enumerated() {
            _ = try client.ask(rcptRequest("rules.\(index)", recipient: "\(recipient)@example.com"))
        }
        let text = try await metricsText(metrics)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("vrules_rules_decisions_total{") }.sorted()
        #expect(lines == [
            #"vrules_rules_decisions_total{rule="broken",verdict="defer"} 1"#,
            #"vrules_rules_decisions_total{rule="hold",verdict="defer"} 1"#,
            #"vrules_rules_decisions_total{rule="refuse \"quoted\" \\ and\nbroken",verdict="reject"} 2"#,
            #"vrules_rules_decisions_total{rule="welcome",verdict="accept"} 3"#,
        ], "\(text)")
        #expect(server.stop() == 0)
    }

    @Test("a rule that fails is an error line at --log-level warning, once a second with the count since, and a failure metric")
    func ruleFailuresLogged() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            return { rcpt = {
              rule("broken", function(ctx) if ctx.rcpt.local_part == "oops" then local x = nil return x.y end end),
              rule("hold", function(ctx) if ctx.rcpt.local_part == "later" then return defer() end end),
              rule("dns", function(ctx) if ctx.rcpt.local_part == "down" then dns.lookup("good.example") end end),
            } }
            """, arguments: ["--log-level", "warning", "--fault", "good.example=servfail"])
        defer { try? FileManager.default.removeItem(at: directory) }
        for index in 0..<20 {
            #expect(try client.ask(rcptRequest("fail.\(index)", recipient: "oops@example.com")) == "451 4.3.0 Local error in processing, try again later")
        }
        #expect(try client.ask(rcptRequest("hold", recipient: "later@example.com"))?.hasPrefix("451 4.4.3") == true)
        #expect(try client.ask(rcptRequest("down", recipient: "down@example.com"))?.hasPrefix("451 4.4.3") == true)
        let text = try await metricsText(metrics)
        #expect(text.contains(#"vrules_rules_failures_total{rule="broken"} 20"#), "\(text)")
        #expect(!text.contains(#"vrules_rules_failures_total{rule="hold"}"#), "a deliberate defer is no failure")
        #expect(!text.contains(#"vrules_rules_failures_total{rule="dns"}"#), "nor DNS trouble no rule caught")
        #expect(text.contains(#"vrules_rules_decisions_total{rule="broken",verdict="defer"} 20"#))
        // (Lua cuts a long chunk name at its start: "...rules.lua:2:".)
        #expect(server.waitForLog("error vrules: client=192.0.2.10 failure=rule 'broken': ..."), "\(server.log)")
        #expect(server.log.contains("/rules.lua:2: attempt to index a nil value (local 'x') reply=451 4.3.0 Local error in processing, "
                                    + "try again later rule=broken stage=rcpt [Policy] a rule failed: the stage is deferred"), "\(server.log)")
        // The others within the second are told by the next line of the kind, not line by line.
        #expect(server.waitForLog("more_since_last="), "\(server.log)")
        #expect((2...3).contains(server.log.components(separatedBy: "a rule failed").count - 1), "\(server.log)")
        #expect(!server.log.contains("rule=dns"), "\(server.log)")
        #expect(!server.log.contains(" info "), "decisions are not logged at warning: \(server.log)")
        #expect(server.stop() == 0)
    }

    @Test("rules made in a loop: the first 1,000 names that decide get series of their own, the rest count together")
    func ruleDecisionSeriesBounded() async throws {
        let (directory, server, client, metrics) = try self.serving(rules: """
            local entries = {}
            for i = 1, 1003 do
              entries[i] = rule("r" .. i, function(ctx) if ctx.rcpt.local_part == "r" .. i then return reject() end end)
            end
            return { rcpt = entries }
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        for index in 1...1003 {
            _ = try client.ask(rcptRequest("loop.\(index)", recipient: "r\(index)@example.com"))
        }
        let text = try await metricsText(metrics)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("vrules_rules_decisions_total{") }
        #expect(lines.count == 1_001, "\(lines.count) series")
        #expect(lines.contains(#"vrules_rules_decisions_total{rule="r1000",verdict="reject"} 1"#))
        #expect(lines.contains(#"vrules_rules_decisions_total{rule="(other rules)",verdict="reject"} 3"#), "\(lines.suffix(3))")
        #expect(server.stop() == 0)
    }

    @Test("the bound of rule series is per load of the rules: names renamed over reloads never crowd out the running ones")
    func ruleDecisionSeriesAcrossReloads() async throws {
        func rules(_ version: String) -> String {
            """
            local entries = {}
            for i = 1, 600 do
              entries[i] = rule("\(version)." .. i, function(ctx) if ctx.rcpt.local_part == "r" .. i then return reject() end end)
            end
            return { rcpt = entries }
            """
        }
        let (directory, server, client, metrics) = try self.serving(rules: rules("v1"))
        defer { try? FileManager.default.removeItem(at: directory) }
        for index in 1...600 { _ = try client.ask(rcptRequest("v1.\(index)", recipient: "r\(index)@example.com")) }
        try rules("v2").write(to: directory.appendingPathComponent("rules.lua"), atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(server.waitForLog("rules reloaded"))
        for index in 1...600 { _ = try client.ask(rcptRequest("v2.\(index)", recipient: "r\(index)@example.com")) }
        let lines = try await metricsText(metrics).split(separator: "\n").filter { $0.hasPrefix("vrules_rules_decisions_total{") }
        #expect(lines.contains(#"vrules_rules_decisions_total{rule="v2.600",verdict="reject"} 1"#), "\(lines.suffix(3))")
        #expect(!lines.contains { $0.contains("(other rules)") }, "\(lines.suffix(3))")
        // The first load's series stay, with what they counted, until the server starts again.
        #expect(lines.contains(#"vrules_rules_decisions_total{rule="v1.600",verdict="reject"} 1"#))
        #expect(lines.count == 1_200)
        #expect(server.stop() == 0)
    }

    @Test("standard error that is the journal (JOURNAL_STREAM) gets each line's syslog priority; a message cannot forge one")
    func journalPriorities() throws {
        let directory = try CLI.scratch(["main.lua": """
            return { rcpt = { rule("loud", function(ctx)
              log.warn("<0>forged\\n<0>second")
              log.error("trouble")
              log.info("fine")
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("main.lua").path
        let server = try ServeProcess(arguments: ["--rules", script, "--zone", "examples/example.zone"], journal: true)
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("journal")) == "DUNNO")
        #expect(server.waitForLog("] fine"))
        let lines = server.log.split(separator: "\n")
        #expect(lines.first?.hasPrefix("<6>info vrules: event_loops=") == true, "\(server.log)")
        #expect(lines.contains(#"<4>warning vrules.rules: rule=loud stage=rcpt [vrules] <0>forged\n<0>second"#), "\(server.log)")
        #expect(lines.contains("<3>error vrules.rules: rule=loud stage=rcpt [vrules] trouble"), "\(server.log)")
        #expect(lines.contains("<6>info vrules.rules: rule=loud stage=rcpt [vrules] fine"), "\(server.log)")
        #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(server.log)")
        #expect(server.stop() == 0)

        // JOURNAL_STREAM inherited by a process whose standard error goes elsewhere: plain lines.
        let elsewhere = try ServeProcess(arguments: ["--rules", script, "--zone", "examples/example.zone"],
                                         environment: ["JOURNAL_STREAM": "8:12345"])
        #expect(elsewhere.log.split(separator: "\n").first?.hasPrefix("20") == true, "\(elsewhere.log)")
        #expect(!elsewhere.log.contains("<6>"), "\(elsewhere.log)")
        #expect(elsewhere.stop() == 0)
    }

    @Test("socket activation (systemd-socket-activate): the passed TCP or UNIX socket is served, --listen is not bound")
    func socketActivation() throws {
        let directory = try CLI.scratch(["main.lua": self.rules("activated")])
        defer { try? FileManager.default.removeItem(at: directory) }
        let activated = Int(try LoopbackPorts.free())
        let unixPath = directory.appendingPathComponent("policy.sock").path
        for (listen, connect) in [("127.0.0.1:\(activated)", { try PolicyClient(port: activated) }),
                                  (unixPath, { try PolicyClient(unixPath: unixPath) })] as [(String, () throws -> PolicyClient)] {
            let notify = try NotifySocket()
            let configured = Int(try LoopbackPorts.free())
            let log = directory.appendingPathComponent("serve.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
            process.arguments = ["-l", listen, "-E", "NOTIFY_SOCKET=\(notify.environmentValue)", CLI.binary.path, "serve",
                                 "--rules", directory.appendingPathComponent("main.lua").path,
                                 "--zone", "examples/example.zone", "--listen", "127.0.0.1:\(configured)"]
            process.currentDirectoryURL = CLI.packageRoot
            process.standardError = try FileHandle(forWritingTo: log)
            process.standardOutput = FileHandle.nullDevice
            try ChildProcess.start(process)
            defer { if process.isRunning { process.terminate() } }
            // The activator starts vrules at the first connection; the connection waits in
            // the passed socket's backlog meanwhile, as under a .socket unit.
            var client: PolicyClient?
            for _ in 0..<100 where client == nil {
                client = try? connect()
                if client == nil { Thread.sleep(forTimeInterval: 0.05) }
            }
            let activatedClient = try #require(client, "cannot connect to \(listen)")
            activatedClient.setTimeout(seconds: 15)
            #expect(try activatedClient.ask(rcptRequest("activated")) == "550 5.7.1 activated")
            let ready = try #require(notify.receive(until: "READY=1")?.last)
            let shown = listen.hasPrefix("/") ? "unix:" + listen : listen
            #expect(ready.hasPrefix("READY=1\nSTATUS=serving on \(shown) with "), "\(ready)")
            #expect((try? PolicyClient(port: configured)) == nil, "--listen was bound too")
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(text.contains("sockets=1 [vrules] serving the sockets the service manager passed; --listen and [policy] listen are not bound"),
                    "\(text)")
            #expect(text.contains("address=\(shown) descriptor=3 [Policy] policy server listening on a socket from the service manager"),
                    "\(text)")
            activatedClient.close()
            #expect(ChildProcess.stop(process, name: "vrules serve"))
            #expect(process.terminationStatus == 0)
        }
    }

    @Test("sockets passed that cannot be served stop vrules serve with status 2 and the reason")
    func socketActivationRefused() throws {
        // Descriptor 3 made as a service manager would pass it, then vrules exec'd in the same process.
        for (socket, reason) in [("os.open('/dev/null', os.O_RDONLY)", "descriptor 3 of LISTEN_FDS=1 is not a socket"),
                                 ("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach()", "descriptor 3 of LISTEN_FDS=1 is not a stream socket"),
                                 ("socket.socket().detach()", "descriptor 3 of LISTEN_FDS=1 is not listening")] {
            let launcher = """
                import os, socket, sys
                descriptor = \(socket)
                descriptor = descriptor if isinstance(descriptor, int) else descriptor.fileno()
                if descriptor != 3:
                    os.dup2(descriptor, 3)
                os.set_inheritable(3, True)
                os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
                os.execv(sys.argv[1], [sys.argv[1], "serve", "--zone", "examples/example.zone"])
                """
            let result = try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", launcher, CLI.binary.path],
                                              in: CLI.packageRoot, timeout: 30)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(result.stderr == "vrules: cannot serve the sockets the service manager passed: \(reason)\n", "\(result.stderr)")
        }
        let count = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "LISTEN_PID=$$ LISTEN_FDS=65 exec \"$0\" serve --zone examples/example.zone", CLI.binary.path,
        ], in: CLI.packageRoot, timeout: 30)
        #expect(count.status == 2)
        #expect(count.stderr == "vrules: cannot serve the sockets the service manager passed: LISTEN_FDS='65': not a number of descriptors from 1 to 64\n",
                "\(count.stderr)")
    }

    @Test("a stage_timeout longer than Postfix waits for an answer is warned of, at start and on reload")
    func stageTimeoutBeyondPostfix() throws {
        let directory = try CLI.scratch(["vrules.toml": "[limits]\nstage_timeout = \"5m\"\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        let server = try ServeProcess(arguments: ["--config", config.path, "--zone", "examples/example.zone"])
        let warning = "stage_timeout=300s [vrules] [limits] stage_timeout is longer than Postfix waits for a policy answer by default"
            + " (smtpd_policy_service_timeout = 100s): raise that in main.cf to match, or lower stage_timeout"
        #expect(server.log.components(separatedBy: warning).count - 1 == 1, "\(server.log)")
        try "[limits]\nstage_timeout = \"90s\"\n".write(to: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(server.waitForLog("rules reloaded"))
        try "[limits]\nstage_timeout = \"101s\"\n".write(to: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(server.waitForLog("rules reloaded", count: 2))
        let log = server.log
        #expect(log.components(separatedBy: "rules reloaded").count - 1 == 2, "\(log)")
        #expect(log.components(separatedBy: warning).count - 1 == 1, "90s is within Postfix's wait: \(log)")
        #expect(log.contains(warning.replacingOccurrences(of: "300s", with: "101s")), "\(log)")
        #expect(server.stop() == 0)
    }

    @Test("bad flags and a broken script exit with 2")
    func errors() throws {
        let badListen = try CLI.run(["serve", "--listen", "nowhere"])
        #expect(badListen.status == 2)
        #expect(badListen.stderr.hasPrefix("Error: --listen: 'nowhere': not HOST:PORT, [IPV6]:PORT or unix:PATH\n"), "\(badListen.stderr)")
        let twice = try CLI.run(["serve", "--listen", "[::]:10040", "--listen", "127.0.0.1:10040"])
        #expect(twice.status == 2)
        #expect(twice.stderr.hasPrefix("Error: --listen: [::]:10040 and 127.0.0.1:10040 both take port 10040 (:: is every address)\n"),
                "\(twice.stderr)")
        // Once taken, and the server ran without metrics and without a word.
        for metrics in ["unix:/tmp/vrules-metrics.sock", "nonsense"] {
            let badMetrics = try CLI.run(["serve", "--zone", "examples/example.zone", "--listen", "127.0.0.1:0", "--metrics", metrics],
                                         timeout: 30)
            #expect(badMetrics.status == 2, "\(metrics): \(badMetrics.stderr)")
            #expect(badMetrics.stderr.hasPrefix("Error: --metrics: '\(metrics)' is not HOST:PORT (metrics are served over TCP only)\n"),
                    "\(badMetrics.stderr)")
        }
        let broken = try CLI.run(["serve", "--rules", "does/not/exist.lua", "--zone", "examples/example.zone"])
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("does/not/exist.lua"))
    }
}
