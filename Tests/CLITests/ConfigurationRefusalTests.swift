import Foundation
import Policy
import Testing
import VrulesTestSupport

/// A configuration typo is an error, never a crash, and every command says the same about
/// it: `vrules check` prints the diagnostics, and `run`, `serve` and `dns` refuse the file
/// with exactly those lines (exit status 2), whatever the file holds.
@Suite("Configuration refusal", .serialized)
struct ConfigurationRefusalTests {
    static let example = (try? String(contentsOf: CLI.packageRoot.appendingPathComponent("examples/vrules.toml"), encoding: .utf8)) ?? ""

    /// Broken files: the header that made toml++ abort, then one mistake of each kind.
    static let brokenFiles: [(String, [UInt8])] = [
        ("header-with-empty-key", Array(example.replacingOccurrences(of: "[server.dns.options]", with: "[..server.dns.options]").utf8)),
        ("array-header-with-empty-key", Array(example.replacingOccurrences(of: "[policy]", with: "[[policy..x]]").utf8)),
        ("unknown-keys", Array(example.replacingOccurrences(of: "attempts = 1", with: "atempts = 1")
            .replacingOccurrences(of: "instructions =", with: "instrucions =").utf8)),
        ("bad-duration", Array(example.replacingOccurrences(of: "\"30s\"", with: "\"1.5s\"").utf8)),
        ("bad-enum", Array(example.replacingOccurrences(of: "Ipv4thenIpv6", with: "ipv4ThenIpv6").utf8)),
        ("wrong-type", Array(example.replacingOccurrences(of: "rotate = false", with: "rotate = \"no\"").utf8)),
        ("not-utf8", Array("[server.dns]\ntype = \"".utf8) + [0xC3, 0x28] + Array("\"\n".utf8)),
        ("nested-too-deeply", Array(("a = " + String(repeating: "[", count: 50_000)).utf8)),
        ("duplicate-table", Array((example + "\n[limits]\n").utf8)),
        ("empty-socket-group", Array(example.replacingOccurrences(of: "socket_group = \"postfix\"", with: "socket_group = \"\"").utf8)),
        ("listen-addresses", Array(example.replacingOccurrences(
            of: "listen = [\"127.0.0.1:10040\", \"unix:/run/vrules/policy.sock\"]",
            with: "listen = [\"0.0.0.0:10040\", \"127.0.0.1:10040\", \"127.0.0.1:99999\", \"unix:\", \"unix:/\(String(repeating: "a", count: 120))\"]").utf8)),
    ]

    @Test("check, run, serve and dns refuse each broken file with the same lines, and none of them crashes")
    func sameRefusal() throws {
        let directory = try CLI.scratch([:])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let rules = CLI.packageRoot.appendingPathComponent("rules/main.lua").path
        for (name, bytes) in Self.brokenFiles {
            let file = "\(name).toml"
            try Data(bytes).write(to: directory.appendingPathComponent(file))
            let check = try CLI.run(["check", file], in: directory)
            #expect(check.status == 1, "\(name): \(check.stdout)\(check.stderr)")
            #expect(check.stdout.hasPrefix("\(file):"), "\(name): \(check.stdout)")
            #expect(check.stdout.hasSuffix("]\n"), "\(name): \(check.stdout)")
            let refusals = [
                ("run", try CLI.run(["run", "--config", file, "--zone", zone, "--rules", rules], in: directory)),
                ("serve", try CLI.run(["serve", "--config", file, "--zone", zone, "--rules", rules, "--listen", "127.0.0.1:1"], in: directory)),
                ("dns", try CLI.run(["dns", "lookup", "example.com", "--config", file], in: directory)),
            ]
            for (command, output) in refusals {
                #expect(output.status == 2, "\(command) \(name): \(output.stderr)")
                #expect(output.stderr == "vrules: \(check.stdout)", "\(command) \(name)")
            }
        }
    }

    @Test("check refuses every listen address serve would not bind, at its place in the file")
    func listenAddresses() throws {
        let name = "listen-addresses"
        let bytes = try #require(Self.brokenFiles.first { $0.0 == name }?.1)
        let directory = try CLI.scratch(["vrules.toml": String(decoding: bytes, as: UTF8.self)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", "vrules.toml"], in: directory)
        #expect(check.stdout == """
            vrules.toml:39:28: error: policy.listen[1]: 0.0.0.0:10040 and 127.0.0.1:10040 both take port 10040 (0.0.0.0 is every IPv4 address) [config-value]
            vrules.toml:39:47: error: policy.listen[2]: '127.0.0.1:99999': port 99999 is not 0 to 65535 [config-value]
            vrules.toml:39:66: error: policy.listen[3]: 'unix:': no path after 'unix:' [config-value]
            vrules.toml:39:75: error: policy.listen[4]: 'unix:/\(String(repeating: "a", count: 114))…': the path is too long for a socket (121 bytes; 107 at most) [config-value]

            """)
        #expect(check.status == 1)
    }

    @Test("at most 64 listen addresses: a file or a command line listing thousands is refused at once, not compared pair by pair")
    func manyListenAddresses() throws {
        func listen(_ count: Int) -> String {
            "[policy]\nlisten = [" + (0..<count).map { "\"127.0.0.1:\(1_000 + $0)\"" }.joined(separator: ", ") + "]\n"
        }
        let directory = try CLI.scratch(["many.toml": listen(5_000), "most.toml": listen(64)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let many = try CLI.run(["check", "many.toml"], in: directory, timeout: 60)
        #expect(many.stdout == "many.toml:2:1: error: policy.listen: at most 64 addresses, got 5000 [config-value]\n")
        let most = try CLI.run(["check", "most.toml"], in: directory, timeout: 60)
        #expect(most.stdout == "")
        #expect(most.status == 0)
        let options = (0..<65).flatMap { ["--listen", "127.0.0.1:\(2_000 + $0)"] }
        let serve = try CLI.run(["serve"] + options, in: directory, timeout: 60)
        #expect(serve.status == 2)
        #expect(serve.stderr.hasPrefix("Error: --listen: at most 64 addresses, got 65\n"), "\(serve.stderr)")
    }

    @Test("a script that outgrows [limits] memory as it loads is refused naming the script and the cap, by run and serve alike")
    func memoryAtLoad() throws {
        let directory = try CLI.scratch([
            "vrules.toml": "[limits]\nmemory = \"1MiB\"\n",
            "main.lua": "local kept = {} for i = 1, 100000 do kept[i] = i end\nreturn {}\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let expected = "vrules: cannot load rules: main.lua: memory limit exceeded while the script loads (1MiB, [limits] memory)\n"
        let run = try CLI.run(["run", "--zone", zone, "--rules", "main.lua"], in: directory)
        #expect(run.status == 2)
        #expect(run.stderr == expected)
        let serve = try CLI.run(["serve", "--zone", zone, "--rules", "main.lua", "--listen", "127.0.0.1:0"], in: directory, timeout: 30)
        #expect(serve.status == 2)
        // Not "rule engines started" first: they did not.
        #expect(serve.stderr == expected, "\(serve.stderr)")
    }

    @Test("the linter's diagnostics for the old crashing header name its line and column")
    func crashingHeaderDiagnostic() throws {
        let directory = try CLI.scratch(["vrules.toml": Self.example.replacingOccurrences(of: "[server.dns.options]", with: "[..server.dns.options]")])
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", "vrules.toml"], in: directory)
        #expect(check.stdout == "vrules.toml:10:2: error: TOML syntax error: expected a key, found '.' [config-syntax]\n")
        let json = try CLI.run(["check", "--format", "json", "vrules.toml"], in: directory)
        #expect(json.stdout.contains("\"code\" : \"config-syntax\""), "\(json.stdout)")
    }

    @Test("--delay and --fault NAME=delay: use the configuration's duration grammar")
    func commandLineDurations() throws {
        let good = try CLI.run(["run", "--zone", "examples/example.zone", "--delay", "20ms", "--fault", "example.com=delay:0ms",
                                "--client-ip", "192.0.2.10", "--helo", "mail.example.com"])
        #expect(good.status == 0, "\(good.stderr)")
        let fraction = try CLI.run(["run", "--zone", "examples/example.zone", "--delay", "1.5s"])
        #expect(fraction.status != 0)
        #expect(fraction.stderr.contains("--delay: invalid duration '1.5s' (use a whole number followed by ms, s or m, e.g. \"60s\")"), "\(fraction.stderr)")
        let bare = try CLI.run(["run", "--zone", "examples/example.zone", "--fault", "example.com=delay:5"])
        #expect(bare.status != 0)
        #expect(bare.stderr.contains("invalid duration '5' (use a whole number followed by ms, s or m) (did you mean '5s'?)"), "\(bare.stderr)")
    }

    @Test("SIGHUP with a broken configuration keeps serving with the old one and logs the error; a fixed file reloads")
    func reloadWithBrokenConfiguration() throws {
        let directory = try CLI.scratch([:])
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("vrules.toml")
        let good = "[server.dns]\ntype = \"custom\"\nservers = [\"127.0.0.1:53\"]\n\n[server.dns.options]\ntimeout = \"2s\"\n\n[limits]\nstage_timeout = \"5s\"\n"
        try good.write(to: config, atomically: true, encoding: .utf8)
        let script = directory.appendingPathComponent("main.lua")
        func rules(_ version: String) -> String {
            "return { rcpt = { rule('version', function(ctx) return reject(reply(550, '5.7.1', '\(version)')) end) } }\n"
        }
        try rules("v1").write(to: script, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["--config", config.path, "--rules", script.path, "--zone", "examples/example.zone"])
        let client = try PolicyClient(port: server.port)
        client.setTimeout(seconds: 10)
        #expect(try client.ask(rcptRequest("a")) == "550 5.7.1 v1")

        // New rules and a broken configuration: the reload must fail as a whole. The third
        // names a FIFO as its trust anchors, which a reload once waited on for good.
        try rules("v2").write(to: script, atomically: true, encoding: .utf8)
        let fifo = directory.appendingPathComponent("anchors.fifo").path
        #expect(mkfifo(fifo, 0o644) == 0)
        let broken = [
            "[..server.dns.options]\ntimeout = \"2s\"\n",
            good.replacingOccurrences(of: "\"5s\"", with: "\"5 s\""),
            good.replacingOccurrences(of: "timeout = \"2s\"\n", with: "timeout = \"2s\"\nvalidate = true\ntrust_anchor_file = \"anchors.fifo\"\n"),
        ]
        for (index, broken) in broken.enumerated() {
            try broken.write(to: config, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            #expect(server.waitForLog("reload failed, keeping the running rules", count: index + 1))
            #expect(server.process.isRunning)
            #expect(try client.ask(rcptRequest("b\(index)")) == "550 5.7.1 v1")
        }
        let log = server.log
        #expect(log.contains("\(config.path):1:2: error: TOML syntax error: expected a key, found '.' [config-syntax]"), "\(log)")
        #expect(log.contains("\(config.path):9:1: error: limits.stage_timeout: invalid duration '5 s'"), "\(log)")
        #expect(log.contains("trust anchor file \(fifo): cannot read: not a regular file (a FIFO)"), "\(log)")

        try good.write(to: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(server.waitForLog("rules reloaded", count: 1))
        #expect(try client.ask(rcptRequest("c")) == "550 5.7.1 v2")
        #expect(server.stop() == 0)
    }
}
