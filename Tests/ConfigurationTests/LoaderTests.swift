import Configuration
import DNS
import DNSResolver
import Testing
import TOML

func check(_ text: String) -> [ConfigurationError] {
    VrulesConfiguration.check(Array(text.utf8), file: "vrules.toml", resolvConfPath: "/nonexistent/resolv.conf").errors
}

/// The repository root, found from this file (tests run from the package directory too).
let packageRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

@Suite("Configuration loader")
struct LoaderTests {
    @Test("the example file loads: DNS, virtual domains, policy and limits")
    func example() throws {
        let configuration = try VrulesConfiguration.load(path: "\(packageRoot)/examples/vrules.toml", resolvConfPath: "/nonexistent/resolv.conf")
        #expect(configuration.dns.root.type == .custom)
        #expect(configuration.dns.root.servers.map(\.description) == ["127.0.0.1:53"])
        #expect(configuration.dns.root.options.timeout == .seconds(2))
        #expect(configuration.dns.root.options.cacheSize == 1024)
        #expect(configuration.dns.virtualDomains["example.com"]?.type == .google)
        #expect(configuration.listen == ["127.0.0.1:10040", "unix:/run/vrules/policy.sock"])
        #expect(configuration.limits == VrulesConfiguration.Limits(instructionsPerStage: 5_000_000, memoryBytes: 64 << 20,
                                                                   stageTimeout: .seconds(30), logLinesPerStage: 100,
                                                                   dnsCallsPerStage: 100))
    }

    @Test("the header that aborted the old C++ parser is a syntax error at its line")
    func crashingHeader() throws {
        let example = try String(contentsOfFile: "\(packageRoot)/examples/vrules.toml", encoding: .utf8)
        let broken = example.replacingOccurrences(of: "[server.dns.options]", with: "[..server.dns.options]")
        let errors = check(broken)
        #expect(errors.map(\.description) == ["vrules.toml:10:2: error: TOML syntax error: expected a key, found '.' [config-syntax]"])
    }

    @Test("every mistake of a file is reported, in file order, with its position, key path and nearest spelling")
    func everyMistake() {
        let errors = check("""
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:53", 7]

            [server.virtual."example.com".dns.options]
            ip_strategy = "ipv4only"

            [server.virtual."example.org"]
            dnss = {}

            [policy]
            listen = ["127.0.0.1:10040", 5]

            [limits]
            instructions = 0
            memory = 1.5
            stage_timeout = "1.5s"
            log_lines = 2_000_000
            log_line = 5
            dns_calls = 0
            """)
        #expect(errors.map(\.description) == [
            "vrules.toml:3:28: error: server.dns.servers[1]: expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found an integer [config-type]",
            "vrules.toml:6:1: error: server.virtual.\"example.com\".dns.options.ip_strategy: unknown ip_strategy 'ipv4only' (did you mean 'Ipv4Only'?) [config-value]",
            "vrules.toml:9:1: error: server.virtual.\"example.org\".dnss: unknown key (did you mean 'dns'?) [config-unknown-key]",
            "vrules.toml:12:30: error: policy.listen[1]: expected a string, found an integer [config-type]",
            "vrules.toml:15:1: error: limits.instructions: must be positive, got 0 [config-value]",
            "vrules.toml:16:1: error: limits.memory: expected a size such as \"64MiB\" or a number of bytes, found a floating-point number [config-type]",
            "vrules.toml:17:1: error: limits.stage_timeout: invalid duration '1.5s' (use a whole number followed by ms, s or m, e.g. \"60s\") [config-value]",
            "vrules.toml:18:1: error: limits.log_lines: 2000000 is out of range 0...1000000 [config-value]",
            "vrules.toml:19:1: error: limits.log_line: unknown key (did you mean 'log_lines'?) [config-unknown-key]",
            "vrules.toml:20:1: error: limits.dns_calls: must be positive, got 0 [config-value]",
        ])
    }

    @Test("every mistake in one resolver table is reported, not only the first")
    func everyDNSMistake() {
        let errors = check("""
            [server.dns]
            type = "custom"
            servers = ["x", "127.0.0.1", 5]
            timout = 1

            [server.dns.options]
            timeout = "5sec"
            attempts = -1
            ip_strategy = "v4"
            rotate = true

            [server.virtual."example.com".dns]
            type = "gogle"
            servers = ["127.0.0.1"]
            """)
        #expect(errors.map { "\($0.position) \($0.text)" } == [
            "3:12 server.dns.servers[0]: expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found 'x'",
            "3:30 server.dns.servers[2]: expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found an integer",
            "4:1 server.dns.timout: unknown key",
            "7:1 server.dns.options.timeout: invalid duration '5sec' (use a whole number followed by ms, s or m) (did you mean '5s'?)",
            "8:1 server.dns.options.attempts: -1 is out of range 0...16",
            "9:1 server.dns.options.ip_strategy: unknown ip_strategy 'v4' (did you mean 'Ipv4Only'?)",
            "13:1 server.virtual.\"example.com\".dns.type: unknown resolver type 'gogle' (did you mean 'google'?)",
        ])
        #expect(check("[server.dns]\ntype = \"custom\"\nservers = []\nbogus = 1\n").map(\.text) == [
            "server.dns.servers: type = \"custom\" needs at least one server",
            "server.dns.bogus: unknown key",
        ])
    }

    @Test("text echoed from the file cannot forge lines or escape sequences: control characters escaped, long text cut")
    func hostileEcho() throws {
        let errors = check("""
            [server.dns."evil\\nvrules.toml:1:1: error: forged [config-syntax]"]
            [limits]
            stage_timeout = "\\u001B[2J5 sec"
            memory = "\(String(repeating: "9", count: 5_000))"
            "bidi\\u202Ekey" = 1
            [server.dns.options]
            ip_strategy = "Ipv4\\r\\nOnly"
            """)
        for error in errors {
            #expect(!error.description.contains("\n") && !error.description.contains("\r") && !error.description.contains("\u{1B}"), "\(error)")
            #expect(!error.description.unicodeScalars.contains("\u{202E}"), "\(error)")
            #expect(error.description.count < 400, "\(error.description.count)")
        }
        #expect(errors.map(\.text) == [
            "server.dns.\"evil\\nvrules.toml:1:1: error: forged [config-syntax]\": unknown key",
            "limits.stage_timeout: invalid duration '\\u001B[2J5 sec' (use a whole number followed by ms, s or m, e.g. \"60s\")",
            "limits.memory: invalid size '\(String(repeating: "9", count: 80))…' (use a whole number of bytes, or a number followed by KiB, MiB or GiB)",
            "limits.\"bidi\\u202Ekey\": unknown key",
            "server.dns.options.ip_strategy: unknown ip_strategy 'Ipv4\\r\\nOnly' (did you mean 'Ipv4Only'?)",
        ])
    }

    @Test("tables where values belong and values where tables belong are type errors")
    func wrongShapes() {
        #expect(check("server = 1\n").map(\.text) == ["server: expected a table, found an integer"])
        #expect(check("[server]\nvirtual = []\n").map(\.text) == ["server.virtual: expected a table, found an array"])
        #expect(check("[server.virtual]\n\"a.example\" = true\n").map(\.text) == ["server.virtual.\"a.example\": expected a table, found a boolean"])
        #expect(check("policy = \"x\"\nlimits = 2\n").map(\.text) == ["policy: expected a table, found a string", "limits: expected a table, found an integer"])
        #expect(check("[[limits]]\n").map(\.text) == ["limits: expected a table, found an array"])
    }

    @Test("one duration grammar: whole number and ms, s or m; a TOML integer is seconds")
    func durationGrammar() throws {
        let accepted: [(String, Duration)] = [("\"500ms\"", .milliseconds(500)), ("\"5s\"", .seconds(5)), ("\"2m\"", .seconds(120)),
                                              ("7", .seconds(7)), ("\"3600s\"", .seconds(3600))]
        for (text, expected) in accepted {
            let configuration = try VrulesConfiguration.parse(Array("[limits]\nstage_timeout = \(text)\n[server.dns]\ntype = \"google\"\n[server.dns.options]\ntimeout = \(text)\n".utf8),
                                                              file: "v.toml")
            #expect(configuration.limits.stageTimeout == expected, "\(text)")
            #expect(configuration.dns.root.options.timeout == .nanoseconds(Int64(expected.components.seconds) * 1_000_000_000 + expected.components.attoseconds / 1_000_000_000))
        }
        let refused: [(String, String, String?)] = [
            ("\"1.5s\"", "invalid duration '1.5s' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil),
            ("\"5\"", "invalid duration '5' (use a whole number followed by ms, s or m)", "5s"),
            ("\"5sec\"", "invalid duration '5sec' (use a whole number followed by ms, s or m)", "5s"),
            ("\"250 ms\"", "invalid duration '250 ms' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil),
            ("\"-1s\"", "invalid duration '-1s' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil),
            ("\"\"", "invalid duration '' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil),
            ("\"99999999999999999999s\"", "duration '99999999999999999999s' is too large", nil),
            ("0", "must be positive, got 0", nil),
            ("\"0ms\"", "must be positive, got '0ms'", nil),
            ("-3", "must be positive, got -3", nil),
            ("\"2h\"", "invalid duration '2h' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil),
            ("\"61m\"", "'61m' is out of range (0, 60m]", nil),
            ("3601", "3601 is out of range (0, 60m]", nil),
            ("1.5", "expected a duration such as \"500ms\" or \"5s\", found a floating-point number", nil),
            ("true", "expected a duration such as \"500ms\" or \"5s\", found a boolean", nil),
        ]
        for (text, message, suggestion) in refused {
            for document in ["[limits]\nstage_timeout = \(text)\n", "[server.dns]\ntype = \"google\"\n[server.dns.options]\ntimeout = \(text)\n"] {
                let errors = check(document)
                #expect(errors.count == 1, "\(document)")
                #expect(errors.first?.message == message, "\(document)")
                #expect(errors.first?.suggestion == suggestion, "\(document)")
            }
        }
    }

    @Test("the duration grammar the command line uses is the same")
    func durationText() {
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        #expect(DurationText.parse("1.5s") == nil)
        #expect(DurationText.parse("2") == nil)
        #expect(DurationText.parse("0ms") == .zero)
        #expect(DurationText.complaint(about: "2") == "invalid duration '2' (use a whole number followed by ms, s or m) (did you mean '2s'?)")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
        #expect(DurationText.format(.seconds(3600)) == "60m")
    }

    @Test("one size grammar: bytes, or K/KiB, M/MiB, G/GiB")
    func sizeGrammar() throws {
        for (text, expected) in [("\"2048KiB\"", 2 << 20), ("\"64M\"", 64 << 20), ("\"1GiB\"", 1 << 30), ("\"1048576\"", 1 << 20), ("1048576", 1 << 20)] {
            let configuration = try VrulesConfiguration.parse(Array("[limits]\nmemory = \(text)\n".utf8), file: "v.toml")
            #expect(configuration.limits.memoryBytes == expected)
        }
        for text in ["\"64 MB\"", "\"64MB\"", "\"1.5GiB\"", "\"0\"", "0", "-1", "\"99999999999999999G\""] {
            #expect(check("[limits]\nmemory = \(text)\n").count == 1, "\(text)")
        }
    }

    @Test("[limits] memory is at least 1MiB: below it the rules may not even load, and serve said only 'not enough memory'")
    func memoryFloor() throws {
        for text in ["\"512KiB\"", "\"1KiB\"", "1048575"] {
            let bytes = try #require(ByteSizeText.parse(text.replacingOccurrences(of: "\"", with: "")))
            #expect(check("[limits]\nmemory = \(text)\n").map(\.text)
                == ["limits.memory: at least 1MiB, got \(bytes) bytes (the rules and the transactions held for them share it)"])
        }
        #expect(check("[limits]\nmemory = \"1MiB\"\n").isEmpty)
    }

    @Test("a missing file, a directory and a file that is not UTF-8 are errors naming the file")
    func unreadable() throws {
        let missing = VrulesConfiguration.check(path: "/nonexistent/vrules.toml")
        #expect(missing.errors.map(\.description) == ["/nonexistent/vrules.toml:1:1: error: no such file [unreadable-file]"])
        let defaults = VrulesConfiguration.check(path: "/nonexistent/vrules.toml", ifMissing: .systemDefaults, resolvConfPath: "/nonexistent/resolv.conf")
        #expect(defaults.errors.isEmpty)
        #expect(defaults.configuration?.dns.root.type == .system)
        #expect(VrulesConfiguration.check(path: "/tmp").errors.map(\.description) == ["/tmp:1:1: error: cannot read file: not a regular file (a folder) [unreadable-file]"])
        #expect(VrulesConfiguration.check(path: "/dev/zero").errors.map(\.description) == ["/dev/zero:1:1: error: cannot read file: not a regular file (a character device) [unreadable-file]"])
        #expect(VrulesConfiguration.check(path: "/etc/passwd/x").errors.map(\.message) == ["no such file"])
        let latin1 = VrulesConfiguration.check([0x23, 0x20, 0xE9, 0x0A], file: "v.toml").errors
        #expect(latin1.map(\.description) == ["v.toml:1:3: error: TOML syntax error: the file is not valid UTF-8 [config-syntax]"])
    }
}
