import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import DNS
import DNSTestSupport
import DNSResolver
import VrulesTestSupport

@Suite("vrules test")
struct TestCommandTests {
    /// A temporary directory with a rule script and test files.
    struct Workspace {
        let url: URL

        init(rules: String, tests: [String: String]) throws {
            self.url = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-test-\(UUID())")
            try FileManager.default.createDirectory(at: self.url.appendingPathComponent("rules/tests"), withIntermediateDirectories: true)
            try rules.write(to: self.url.appendingPathComponent("rules/main.lua"), atomically: true, encoding: .utf8)
            for (name, text) in tests {
                try text.write(to: self.url.appendingPathComponent("rules/tests/\(name)"), atomically: true, encoding: .utf8)
            }
        }

        func run(_ arguments: [String]) throws -> CLI.Output { try CLI.run(["test"] + arguments, in: self.url) }
        func remove() { try? FileManager.default.removeItem(at: self.url) }
    }

    static let rules = """
    return {
      connect = { rule("iprev", function(ctx)
        local r = dns.iprev(ctx.client.ip)
        ctx.vars.iprev = r.status
        if r.status == "temperror" then return defer() end
        if r.status ~= "pass" then log.warn("no rdns for", ctx.client.ip) return reject() end
      end) },
      mail = { rule("hostile", function(ctx) if ctx.mail_from.local_part == "loop" then while true do end end end) },
    }
    """

    static let zone = """
      zone = [[
    $ORIGIN test.
    host A 192.0.2.10
    $ORIGIN 2.0.192.in-addr.arpa.
    10 PTR host.test.
    ]],
    """

    @Test("passing and failing tests: one line each, the summary line, exit status, and why it failed")
    func passAndFail() throws {
        let workspace = try Workspace(rules: Self.rules, tests: ["a_test.lua": """
        return {
        \(Self.zone)
          tests = {
            { name = "good", client_ip = "192.0.2.10", expect = { connect = "next" }, vars = { iprev = "pass" } },
            { name = "no rdns", client_ip = "192.0.2.99", expect = { connect = "550 5.7.25" }, logs = { "no rdns for 192.0.2.99" } },
            { name = "wrong on purpose", client_ip = "192.0.2.99", expect = { connect = "accept" } },
            { name = "servfail", client_ip = "192.0.2.10", faults = { ["10.2.0.192.in-addr.arpa"] = "servfail" },
              expect = { connect = "451 4.4.3" }, vars = { iprev = "temperror" } },
            { name = "wrong vars", client_ip = "192.0.2.10", expect = { connect = "next" }, vars = { iprev = "fail" } },
          },
        }
        """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 1)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("ok - rules/tests/a_test.lua: good"))
        #expect(lines.contains("ok - rules/tests/a_test.lua: no rdns"))
        #expect(lines.contains("ok - rules/tests/a_test.lua: servfail"))
        #expect(lines.contains("FAIL - rules/tests/a_test.lua: wrong on purpose"))
        #expect(lines.contains { $0.contains("connect: expected accept, got reject 550 5.7.25 Reverse DNS validation failed (rule \"iprev\"); dns: 99.2.0.192.in-addr.arpa/PTR nxdomain") })
        #expect(lines.contains("    ctx.vars.iprev: expected fail, got pass"))
        #expect(lines.last == "3 passed, 2 failed")
    }

    @Test("--coverage: each rule and action with how often the tests ran it and what it decided; which never ran or never decided")
    func coverage() throws {
        let rules = """
        return {
          connect = {
            action("count", function(ctx) end),
            rule("iprev", function(ctx)
              local r = dns.iprev(ctx.client.ip)
              if r.status ~= "pass" then return reject() end
            end),
            rule("never refuses", function(ctx) if ctx.client.ip == "203.0.113.1" then return reject() end end),
          },
          rcpt = {
            rule("per recipient", function(ctx)
              if ctx.rcpt.local_part == "no" then return reject() end
              if ctx.rcpt.local_part == "oops" then error("oops") end
            end),
          },
          helo = { rule("anyone", function(ctx) return accept() end), rule("shadowed", function(ctx) return reject() end) },
        }
        """
        let workspace = try Workspace(rules: rules, tests: ["a_test.lua": """
        return {
        \(Self.zone)
          tests = {
            { name = "good", client_ip = "192.0.2.10", helo = "host.test", mail_from = "a@test", rcpt = { "yes@test", "no@test" },
              expect = { rcpt = { "next", "reject" } } },
            { name = "no rdns", client_ip = "192.0.2.99", expect = { connect = "550 5.7.25" } },
            { name = "a failing rule", client_ip = "192.0.2.10", helo = "host.test", mail_from = "a@test", rcpt = "oops@test",
              expect = { rcpt = "451 4.3.0" } },
          },
        }
        """])
        defer { workspace.remove() }
        let output = try workspace.run(["--coverage"])
        #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
        let lines = output.stdout.split(separator: "\n").map(String.init)
        let report = Array(lines.drop { !$0.hasPrefix("coverage of") })
        #expect(report == [
            "coverage of rules/main.lua (3 tests):",
            #"  connect action "count" (rules/main.lua:3): ran 3 times"#,
            #"  connect rule "iprev" (rules/main.lua:4): ran 3 times, decided 1 (reject 1)"#,
            #"  connect rule "never refuses" (rules/main.lua:8): ran 2 times, never decided"#,
            #"  helo rule "anyone" (rules/main.lua:16): ran 2 times, decided 2 (accept 2)"#,
            #"  helo rule "shadowed" (rules/main.lua:16): never ran"#,
            #"  rcpt rule "per recipient" (rules/main.lua:11): ran 3 times, decided 2 (failed 1, reject 1)"#,
            "coverage: 5 of 6 entries ran; 3 of 5 rules decided at least once",
        ], "\(output.stdout)")
        // Without the flag, no report.
        #expect(!(try workspace.run([])).stdout.contains("coverage"))
        // --require-coverage: the same report, and status 1 for the rule that never decided and the one that never ran.
        let required = try workspace.run(["--require-coverage"])
        #expect(required.status == 1)
        #expect(required.stdout.hasSuffix("3 passed, 0 failed\n" + report.joined(separator: "\n")
            + "\n--require-coverage: 2 entries never ran or never decided\n"), "\(required.stdout)")
    }

    @Test("--coverage shows a rule name with control characters as its escape: no forged line")
    func coverageEscapes() throws {
        let workspace = try Workspace(rules: """
            return { connect = { rule("evil\\nok - forged", function(ctx) return reject() end) } }
            """, tests: ["a_test.lua": """
            return { tests = { { name = "one", client_ip = "192.0.2.10", expect = { connect = "reject" } } } }
            """])
        defer { workspace.remove() }
        let output = try workspace.run(["--coverage"])
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"  connect rule "evil\nok - forged" (rules/main.lua:1): ran 1 time, decided 1 (reject 1)"#), "\(output.stdout)")
        #expect(!lines.contains { $0.hasPrefix("ok - forged") }, "\(output.stdout)")
    }

    @Test("--filter, --junit, and exit status 0 when all pass")
    func filterAndJUnit() throws {
        let workspace = try Workspace(rules: Self.rules, tests: ["b_test.lua": """
        return {
        \(Self.zone)
          tests = {
            { name = "good one", client_ip = "192.0.2.10", expect = { connect = "next" } },
            { name = "bad one", client_ip = "192.0.2.99", expect = { connect = "accept" } },
          },
        }
        """])
        defer { workspace.remove() }
        let junit = workspace.url.appendingPathComponent("report.xml").path
        let filtered = try workspace.run(["--filter", "good", "--junit", junit])
        #expect(filtered.status == 0)
        #expect(filtered.stdout.hasSuffix("1 passed, 0 failed\n"))
        let all = try workspace.run(["--junit", junit])
        #expect(all.status == 1)
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<testsuites name=\"vrules\" tests=\"2\" failures=\"1\">"))
        #expect(xml.contains("<testcase classname=\"rules/tests/b_test.lua\" name=\"good one\""))
        #expect(xml.contains("<failure message=\"connect: expected accept, got reject 550 5.7.25"))
        _ = try XMLDocument(xmlString: xml)
    }

    /// Writing the report once renamed a file over its path, so as root `--junit /dev/full`
    /// put a regular file where /dev/full was, said nothing and exited 0.
    @Test("--junit to a device is written to and never replaced; a write that fails exits 2 with the reason")
    func junitDestinations() throws {
        let workspace = try Workspace(rules: Self.rules, tests: ["b_test.lua": """
        return {
        \(Self.zone)
          tests = { { name = "good one", client_ip = "192.0.2.10", expect = { connect = "next" } } },
        }
        """])
        defer { workspace.remove() }
        func isCharacterDevice(_ path: String) -> Bool {
            var status = stat()
            return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFCHR
        }
        defer {
            // Were they replaced after all (as root), the machine gets them back.
            if !isCharacterDevice("/dev/full"), getuid() == 0 {
                unlink("/dev/full")
                mknod("/dev/full", S_IFCHR | 0o666, dev_t(1 << 8 | 7))  // major 1, minor 7
                chmod("/dev/full", 0o666)
            }
            var link = stat()
            if lstat("/dev/stdout", &link) == 0, link.st_mode & S_IFMT != S_IFLNK, getuid() == 0 {
                unlink("/dev/stdout")
                symlink("/proc/self/fd/1", "/dev/stdout")
            }
        }
        let full = try workspace.run(["--junit", "/dev/full"])
        #expect(full.status == 2)
        #expect(full.stderr == "vrules: cannot write /dev/full: No space left on device\n")
        #expect(isCharacterDevice("/dev/full"))
        let stdout = try workspace.run(["--junit", "/dev/stdout"])
        #expect(stdout.status == 0)
        #expect(stdout.stdout.contains("1 passed, 0 failed\n<?xml"), "\(stdout.stdout)")
        #expect(stdout.stdout.hasSuffix("</testsuites>\n"))
        var link = stat()
        #expect(lstat("/dev/stdout", &link) == 0 && link.st_mode & S_IFMT == S_IFLNK)
        let missing = try workspace.run(["--junit", "reports/report.xml"])
        #expect(missing.status == 2)
        #expect(missing.stderr == "vrules: cannot write reports/report.xml: No such file or directory\n")
        let folder = try workspace.run(["--junit", "rules"])
        #expect(folder.stderr == "vrules: cannot write rules: a folder, not a file\n")
    }

    @Test("control characters in names, keys and failures: one line each on the console, and --junit still XML")
    func controlCharacters() throws {
        let workspace = try Workspace(rules: Self.rules, tests: [
            "g_test.lua": """
            return {
            \(Self.zone)
              tests = {
                { name = "bell\\7here", client_ip = "192.0.2.99", expect = { connect = "accept" } },
                { name = "two\\nok - forged", client_ip = "192.0.2.99", expect = { connect = "550 5.7.25" },
                  logs = { "no rdns\\27[2J" } },
              },
            }
            """,
            "h_test.lua": "return { tests = { { name = 'x', client_ip = '192.0.2.10', ['odd\\1key\\u{202E}'] = 1 } } }",
            "i_test.lua": "return { \(Self.zone) tests = { { name = 'line\\u{2028}sep', client_ip = '192.0.2.99', expect = { connect = 'accept' } } } }",
        ])
        defer { workspace.remove() }
        let junit = workspace.url.appendingPathComponent("report.xml").path
        let output = try workspace.run(["--junit", junit])
        #expect(output.status == 1)
        let lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("FAIL - rules/tests/g_test.lua: bell\\u{7}here"), "\(lines)")
        #expect(lines.contains("FAIL - rules/tests/g_test.lua: two\\nok - forged"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("    no log line contains") && $0.contains("no rdns\\u{1B}[2J") }, "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("ok - forged") })
        #expect(lines.contains("FAIL - rules/tests/h_test.lua: the test file does not load: test 'x': unknown key 'odd\\u{1}key\\u{202E}'"),
                "\(lines)")
        // A line separator too, which some viewers break lines at.
        #expect(lines.contains("FAIL - rules/tests/i_test.lua: line\\u{2028}sep"), "\(lines)")
        #expect(!output.stdout.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x202E || $0.value == 0x2028 })
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("name=\"bell\\u{7}here\""))
        _ = try XMLDocument(xmlString: xml)
    }

    @Test("a hostile rule fails only its own test; no state leaks between tests")
    func isolation() throws {
        let workspace = try Workspace(rules: Self.rules, tests: ["c_test.lua": """
        return {
        \(Self.zone)
          tests = {
            { name = "loops", client_ip = "192.0.2.10", mail_from = "loop@x.test", expect = { mail = "451 4.3.0" } },
            { name = "after the loop", client_ip = "192.0.2.10", mail_from = "ok@x.test", expect = { mail = "next" } },
            { name = "fault in one test", client_ip = "192.0.2.10", faults = { ["10.2.0.192.in-addr.arpa"] = "timeout" },
              expect = { connect = "defer" } },
            { name = "fault gone in the next", client_ip = "192.0.2.10", expect = { connect = "next" } },
          },
        }
        """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 0, "\(output.stdout)")
        #expect(output.stdout.hasSuffix("4 passed, 0 failed\n"))
    }

    @Test("a broken test file is reported and the others still run")
    func brokenFile() throws {
        let workspace = try Workspace(rules: Self.rules, tests: [
            "d_test.lua": "return { tests = { { name = 'x', client_ip = '192.0.2.10', expect = { conect = 'next' } } } }",
            "e_test.lua": "return { tests = { { name = 'syntax' ",
            "f_test.lua": "return { \(Self.zone) tests = { { name = 'fine', client_ip = '192.0.2.10', expect = { connect = 'next' } } } }",
        ])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 1)
        #expect(output.stdout.contains("FAIL - rules/tests/d_test.lua: the test file does not load: test 'x': expect: unknown stage 'conect' (did you mean 'connect'?)"))
        #expect(output.stdout.contains("FAIL - rules/tests/e_test.lua: the test file does not load: rules/tests/e_test.lua:1:"))
        #expect(output.stdout.contains("ok - rules/tests/f_test.lua: fine"))
        #expect(output.stdout.hasSuffix("1 passed, 2 failed\n"))
    }

    @Test("a hostile test file (a cycle, deep nesting, a huge table or string, a loop) is one clear failure, quickly")
    func hostileFiles() throws {
        let workspace = try Workspace(rules: Self.rules, tests: [
            "a_test.lua": "local t = {} t.x = t return { tests = { { name = 'c', vars = t, expect = { connect = 'next' } } } }",
            "b_test.lua": "local t = {} for i = 1, 1000000 do t = { t } end return { tests = { { name = 'd', vars = t } } }",
            "c_test.lua": "local t = {} for i = 1, 200000 do t[i] = i end return { tests = { { name = 'w', vars = t } } }",
            "d_test.lua": "return { tests = { { name = ('x'):rep(1 << 29) } } }",
            "e_test.lua": "while true do end",
            "f_test.lua": "return { \(Self.zone) tests = { { name = 'fine', client_ip = '192.0.2.10', expect = { connect = 'next' } } } }",
        ])
        defer { workspace.remove() }
        let started = Date()
        let output = try workspace.run([])
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(output.status == 1)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("FAIL - rules/tests/a_test.lua: the test file does not load: test 'c': vars.x: expected a string, number or boolean"),
                "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/b_test.lua: the test file does not load: not enough memory"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/c_test.lua: the test file does not load: the test file declares more than 100000 values"),
                "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/d_test.lua: the test file does not load: not enough memory"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/e_test.lua: the test file does not load: instruction budget exceeded"), "\(output.stdout)")
        #expect(lines.contains("ok - rules/tests/f_test.lua: fine"), "\(output.stdout)")
        #expect(output.stdout.hasSuffix("1 passed, 5 failed\n"), "\(output.stdout)")
    }

    @Test("server_port reaches ctx.server.port: rules for submission apart from relay")
    func serverPort() throws {
        let rules = """
        return { connect = { rule("submission only", function(ctx)
          if ctx.server.port ~= 587 then return reject(reply(550, "5.7.1", "port " .. tostring(ctx.server.port))) end
        end) } }
        """
        let workspace = try Workspace(rules: rules, tests: ["ports_test.lua": """
        return { \(Self.zone) tests = {
          { name = 'submission', server_port = 587, expect = { connect = 'next' } },
          { name = 'relay', server_port = 25, expect = { connect = '550 5.7.1 port 25' } },
          { name = 'not sent', expect = { connect = '550 5.7.1 port nil' } },
        } }
        """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
        #expect(output.stdout.hasSuffix("3 passed, 0 failed\n"), "\(output.stdout)")
    }

    /// `auth = ":"` and `auth = ""` indexed an empty split, and `client_port = 1e300` or `0/0`
    /// and a delay of 1e300 seconds converted to an integer: each stopped `vrules test` with a
    /// fatal error, and no file's result was printed. Values of the wrong shape (`logs` or
    /// `headers` as a string, `faults` as a list, `tls = 'yes'`) were left unread, so the
    /// expectation they meant passed without being checked.
    @Test("values a test file gets wrong fail that file with the key named, and the others run")
    func badSessionValues() throws {
        let cases: [(value: String, message: String)] = [
            ("auth = ':'", "auth must be \"MECHANISM:user\" with both given, got \":\""),
            ("auth = ''", "auth must be \"MECHANISM:user\" with both given, got \"\""),
            ("auth = { mechanism = 'PLAIN' }", "auth must be \"MECHANISM:user\" or { mechanism = ..., username = ... }, both given"),
            ("client_port = 1e300", "client_port must be a port number (0 to 65535), got 1e+300"),
            ("client_port = 0/0", "client_port must be a port number (0 to 65535), got -nan"),
            ("client_port = 3.5", "client_port must be a port number (0 to 65535), got 3.5"),
            ("client_port = '25'", "client_port must be a port number (0 to 65535), got string"),
            ("server_port = 65536", "server_port must be a port number (0 to 65535), got 65536.0"),
            ("server_port = '587'", "server_port must be a port number (0 to 65535), got string"),
            ("tls = 'yes'", "tls must be true or false, got string"),
            ("server_ip = 'junk'", "server_ip 'junk' is not an IP address"),
            ("delay = 1e300", "delay: a duration from 0 to 1 hour, got 1e+300 seconds"),
            ("delay = '1e300s'", "delay: a duration from 0 to 1 hour, got 1e+300 seconds"),
            ("faults = { ['good.example'] = { delay = 1e300 } }", "faults.good.example.delay: a duration from 0 to 1 hour, got 1e+300 seconds"),
            ("faults = { 'timeout' }", "faults must be a table of name = fault"),
            ("vars = { 'iprev' }", "vars must be a table of key = value"),
            ("logs = { 'a', 1 }", "logs must be a string or a list of strings"),
            ("headers = 5", "headers must be a string or a list of strings (\"Name: value\" or a part of one)"),
        ]
        var files = ["z_test.lua": """
        return { \(Self.zone) tests = {
          { name = 'fine', client_ip = '192.0.2.10', auth = 'PLAIN:alice', client_port = 65535, tls = false,
            expect = { connect = 'next' } },
          { name = 'one log line, checked', client_ip = '192.0.2.10', logs = 'no such line', expect = { connect = 'next' } },
        } }
        """]
        for (index, bad) in cases.enumerated() {
            files["bad\(index)_test.lua"] = "return { \(Self.zone) tests = { { name = 't', \(bad.value), expect = { connect = 'next' } } } }"
        }
        let workspace = try Workspace(rules: Self.rules, tests: files)
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 1, "\(output.stderr)")
        let lines = output.stdout.split(separator: "\n").map(String.init)
        for (index, bad) in cases.enumerated() {
            #expect(lines.contains("FAIL - rules/tests/bad\(index)_test.lua: the test file does not load: test 't': \(bad.message)"),
                    "\(bad.value): \(output.stdout)")
        }
        #expect(lines.contains("ok - rules/tests/z_test.lua: fine"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/z_test.lua: one log line, checked"), "\(output.stdout)")
        #expect(lines.contains("    no log line contains \"no such line\" (no log lines)"), "\(output.stdout)")
        #expect(output.stdout.hasSuffix("1 passed, \(cases.count + 1) failed\n"), "\(output.stdout)")
    }

    /// The runner once read --config only for tests with dns = "network": the rules ran under
    /// the default limits and blocklist codes whatever the file said, so a test could pass
    /// where serve would defer, and a missing --config went unnoticed.
    @Test("the configuration's [limits] and [dnsbl] apply to the rules under test, as in serve; a missing --config is refused")
    func configurationApplies() throws {
        let rules = """
        return { helo = { rule("work", function(ctx)
          if ctx.helo == "loop" then local n = 0 for i = 1, 200000 do n = n + i end return end
          return reject(reply(550, "5.7.1", dns.dnsbl(ctx.client.ip, "bl.test")[1].status))
        end) } }
        """
        let workspace = try Workspace(rules: rules, tests: ["c_test.lua": """
        return {
          zone = [[
        $ORIGIN bl.test.
        2.0.0.127 A 127.0.0.2
        10.2.0.192 A 127.0.0.9
        ]],
          tests = {
            { name = "a code the configuration does not list", client_ip = "192.0.2.10", helo = "x.test",
              expect = { helo = "550 5.7.1 error" } },
            { name = "past the configured instruction budget", client_ip = "192.0.2.10", helo = "loop",
              expect = { helo = "451 4.3.0" } },
          },
        }
        """])
        defer { workspace.remove() }
        let config = workspace.url.appendingPathComponent("vrules.toml")
        try "[limits]\ninstructions = 100000\n\n[dnsbl.\"bl.test\"]\nlisted = [\"127.0.0.2\"]\n".write(to: config, atomically: true, encoding: .utf8)
        let configured = try workspace.run([])
        #expect(configured.status == 0, "\(configured.stdout)\(configured.stderr)")
        #expect(configured.stdout.hasSuffix("2 passed, 0 failed\n"), "\(configured.stdout)")
        // The same tests without the file: the built-in codes list 127.0.0.9, and the loop fits.
        try FileManager.default.removeItem(at: config)
        let unconfigured = try workspace.run([])
        #expect(unconfigured.stdout.contains("    helo: expected 550 5.7.1 error, got reject 550 5.7.1 listed"), "\(unconfigured.stdout)")
        #expect(unconfigured.stdout.hasSuffix("0 passed, 2 failed\n"), "\(unconfigured.stdout)")
        let missing = try workspace.run(["--config", "missing.toml"])
        #expect(missing.status == 2)
        #expect(missing.stderr == "vrules: missing.toml:1:1: error: no such file [unreadable-file]\n", "\(missing.stderr)")
    }

    @Test("[server.dns.options] ip_strategy and preserve_intermediates apply to the fixtures, in vrules test, run and dns --zone")
    func ipStrategyApplies() throws {
        let rules = """
        return { helo = { rule("addresses", function(ctx)
          if ctx.helo == "alias.test" then return reject(reply(550, "5.7.1", "chain " .. #(dns.query(ctx.helo, "A").chain or {}))) end
          return reject(reply(550, "5.7.1", table.concat(dns.lookup(ctx.helo), " ")))
        end) } }
        """
        let zone = "$ORIGIN test.\nboth A 192.0.2.1\nboth AAAA 2001:db8::1\nsix AAAA 2001:db8::6\nalias CNAME both\n"
        let workspace = try Workspace(rules: rules, tests: ["order_test.lua": """
        return {
          zone = [[
        \(zone)]],
          tests = {
            { name = "both families", client_ip = "192.0.2.10", helo = "both.test", expect = { helo = "550 5.7.1 192.0.2.1 2001:db8::1" } },
            { name = "one family", client_ip = "192.0.2.10", helo = "six.test", expect = { helo = "550 5.7.1 2001:db8::6" } },
            { name = "the CNAME followed", client_ip = "192.0.2.10", helo = "alias.test", expect = { helo = "550 5.7.1 chain 1" } },
          },
        }
        """])
        defer { workspace.remove() }
        let config = workspace.url.appendingPathComponent("vrules.toml")
        try zone.write(to: workspace.url.appendingPathComponent("test.zone"), atomically: true, encoding: .utf8)
        // Without a configuration, Ipv4thenIpv6: both.test gives its IPv4 address alone.
        let unconfigured = try workspace.run([])
        #expect(unconfigured.stdout.contains("    helo: expected 550 5.7.1 192.0.2.1 2001:db8::1, got reject 550 5.7.1 192.0.2.1 (rule"),
                "\(unconfigured.stdout)")
        #expect(unconfigured.stdout.hasSuffix("2 passed, 1 failed\n"), "\(unconfigured.stdout)")

        try "[server.dns.options]\nip_strategy = \"Ipv4AndIpv6\"\n".write(to: config, atomically: true, encoding: .utf8)
        let both = try workspace.run([])
        #expect(both.status == 0, "\(both.stdout)\(both.stderr)")
        #expect(both.stdout.hasSuffix("3 passed, 0 failed\n"), "\(both.stdout)")

        try "[server.dns.options]\nip_strategy = \"Ipv6thenIpv4\"\npreserve_intermediates = false\n".write(
            to: config, atomically: true, encoding: .utf8)
        let sixFirst = try workspace.run([])
        #expect(sixFirst.stdout.contains("    helo: expected 550 5.7.1 chain 1, got reject 550 5.7.1 chain 0 (rule"), "\(sixFirst.stdout)")
        #expect(sixFirst.stdout.contains("    helo: expected 550 5.7.1 192.0.2.1 2001:db8::1, got reject 550 5.7.1 2001:db8::1 (rule"),
                "\(sixFirst.stdout)")
        let run = try CLI.run(["run", "--zone", "test.zone", "--client-ip", "192.0.2.10", "--helo", "both.test"], in: workspace.url)
        #expect(run.stdout.contains("helo: reject 550 5.7.1 2001:db8::1\n"), "\(run.stdout)")
        let dns = try CLI.run(["dns", "lookup", "both.test", "--zone", "test.zone"], in: workspace.url)
        #expect(dns.stdout.contains("(ip_strategy Ipv6thenIpv4; zone test.zone)"), "\(dns.stdout)")
        #expect(dns.stdout.contains("\nlookup: ok\n  2001:db8::1\n;; "), "\(dns.stdout)")
    }

    @Test("a reply Postfix would get otherwise (not ASCII, blanks in runs, too long) is compared and shown as vrules serve sends it")
    func replyAsSent() throws {
        let long = String(repeating: "x", count: 500)
        let workspace = try Workspace(rules: """
            return { connect = { rule("r", function(ctx)
              if ctx.client.ip == "192.0.2.1" then return reject(reply(550, "5.7.1", "Отказано  here")) end
              if ctx.client.ip == "192.0.2.2" then return defer(reply(451, "4.7.1", "\(long)")) end
              return reject(reply(550, "5.7.1", "plain text"))
            end) } }
            """, tests: ["reply_test.lua": """
            return { tests = {
              { name = "as written", client_ip = "192.0.2.1", expect = { connect = "550 5.7.1 Отказано  here" } },
              { name = "as sent", client_ip = "192.0.2.1", expect = { connect = "550 5.7.1 ???????? here" } },
              { name = "cut", client_ip = "192.0.2.2", expect = { connect = "451 4.7.1 \(String(long.prefix(390)))" } },
              { name = "code only", client_ip = "192.0.2.1", expect = { connect = "550 5.7.1" } },
              { name = "plain", client_ip = "192.0.2.3", expect = { connect = "550 5.7.1 plain text" } },
            } }
            """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("FAIL - rules/tests/reply_test.lua: as written"), "\(output.stdout)")
        #expect(lines.contains("    connect: expected 550 5.7.1 Отказано  here, got reject 550 5.7.1 Отказано  here, which vrules serve sends as "
                               + "\"550 5.7.1 ???????? here\" (a reply goes to Postfix as printable ASCII, blanks collapsed, at most 400 characters) "
                               + "(rule \"r\")"), "\(output.stdout)")
        #expect(lines.last == "4 passed, 1 failed", "\(output.stdout)")

        let run = try CLI.run(["run", "--rules", "rules/main.lua", "--zone", CLI.packageRoot.appendingPathComponent("examples/example.zone").path,
                               "--client-ip", "192.0.2.1"], in: workspace.url)
        #expect(run.stdout.contains("connect: reject 550 5.7.1 Отказано  here\n  vrules serve sends it as: 550 5.7.1 ???????? here ("),
                "\(run.stdout)")
        let plain = try CLI.run(["run", "--rules", "rules/main.lua", "--zone", CLI.packageRoot.appendingPathComponent("examples/example.zone").path,
                                 "--client-ip", "192.0.2.3"], in: workspace.url)
        #expect(!plain.stdout.contains("vrules serve sends it as"), "\(plain.stdout)")
        try "request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=192.0.2.1\ninstance=1\n\n".write(
            to: workspace.url.appendingPathComponent("requests.txt"), atomically: true, encoding: .utf8)
        let answer = try CLI.run(["answer", "--rules", "rules/main.lua", "--zone", CLI.packageRoot.appendingPathComponent("examples/example.zone").path,
                                  "requests.txt"], in: workspace.url)
        #expect(answer.stdout.contains("action=550 5.7.1 ???????? here\n"), "what serve sends is what the test compared: \(answer.stdout)")
    }

    @Test("[policy] max_recipients: a recipient past it is answered 452 4.5.3, as vrules serve answers it; refused ones do not count")
    func recipientLimit() throws {
        let rules = """
        return { rcpt = { rule("no bad", function(ctx)
          if ctx.rcpt.local_part == "bad" then return reject(reply(550, "5.1.1", "no")) end
        end) } }
        """
        let workspace = try Workspace(rules: rules, tests: ["r_test.lua": """
        return {
          tests = {
            { name = "the third accepted recipient is one too many", client_ip = "192.0.2.10", helo = "x.test",
              mail_from = "a@x.test", rcpt = { "one@x.test", "bad@x.test", "two@x.test", "three@x.test" },
              expect = { rcpt = { "next", "550 5.1.1 no", "next", "452 4.5.3 Too many recipients" } } },
          },
        }
        """])
        defer { workspace.remove() }
        let config = workspace.url.appendingPathComponent("vrules.toml")
        try "[policy]\nmax_recipients = 2\n".write(to: config, atomically: true, encoding: .utf8)
        let limited = try workspace.run([])
        #expect(limited.stdout.hasSuffix("1 passed, 0 failed\n"), "\(limited.stdout)")
        try FileManager.default.removeItem(at: config)
        let unlimited = try workspace.run([])
        #expect(unlimited.stdout.contains("    rcpt #4: expected 452 4.5.3 Too many recipients, got next 250 2.1.5 Recipient ok"),
                "\(unlimited.stdout)")
        // vrules run answers the same.
        try "[policy]\nmax_recipients = 2\n".write(to: config, atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "--zone", CLI.packageRoot.appendingPathComponent("examples/example.zone").path,
                               "--rules", "rules/main.lua", "--client-ip", "192.0.2.10", "--helo", "x.test", "--mail-from", "a@x.test",
                               "--rcpt", "one@x.test", "--rcpt", "bad@x.test", "--rcpt", "two@x.test", "--rcpt", "three@x.test"],
                              in: workspace.url)
        #expect(run.stdout.components(separatedBy: "\nrcpt: ").dropFirst().map { $0.prefix { $0 != "\n" } }
                == ["next 250 2.1.5 Recipient ok", "reject 550 5.1.1 no", "next 250 2.1.5 Recipient ok",
                    "defer 452 4.5.3 Too many recipients"], "\(run.stdout)")
    }

    /// Postfix adds no header at end of data, so vrules serve cannot deliver one added at
    /// preq; a test expecting it passed, and vrules run listed it on the message.
    /// `vrules run` of the workspace's rules on the example zone: a session from 192.0.2.10
    /// (HELO x.test) with `sender` and one recipient, b@x.test.
    func runSession(in workspace: Workspace, from sender: String, options: [String] = []) throws -> CLI.Output {
        try CLI.run(["run"] + options + ["--zone", CLI.packageRoot.appendingPathComponent("examples/example.zone").path,
                                         "--rules", "rules/main.lua", "--client-ip", "192.0.2.10", "--helo", "x.test",
                                         "--mail-from", sender, "--rcpt", "b@x.test"], in: workspace.url)
    }

    @Test("a refused session's headers are on no message in vrules test or vrules run, and they say where it was refused")
    func headersOfARefusedSession() throws {
        let rules = """
        return {
          mail = { rule("spf", function(ctx)
            ctx.add_header("Received-SPF", "fail")
            if ctx.mail_from.local_part == "spoof" then return reject(replies.spf_fail) end
          end) },
          rcpt = { rule("known", function(ctx) if ctx.rcpt.local_part == "nobody" then return reject("550 5.1.1 unknown") end end) },
          data = { rule("no data", function(ctx) if ctx.mail_from.local_part == "nodata" then return reject("554 5.7.1 no") end end) },
        }
        """
        let workspace = try Workspace(rules: rules, tests: ["r_test.lua": """
        return {
          tests = {
            { name = "mail", client_ip = "192.0.2.10", helo = "x.test", mail_from = "spoof@x.test", rcpt = "b@x.test",
              expect = { mail = "550 5.7.23" }, headers = { "Received-SPF: fail" } },
            { name = "rcpt", client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@x.test", rcpt = "nobody@x.test",
              expect = { rcpt = "550 5.1.1" }, headers = { "Received-SPF: fail" } },
            { name = "data", client_ip = "192.0.2.10", helo = "x.test", mail_from = "nodata@x.test", rcpt = "b@x.test",
              expect = { data = "554 5.7.1" }, headers = { "Received-SPF: fail" } },
            { name = "accepted", client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@x.test", rcpt = "b@x.test",
              expect = { rcpt = "next" }, headers = { "Received-SPF: fail" } },
          },
        }
        """])
        defer { workspace.remove() }
        let tested = try workspace.run([])
        for reason in ["the session was refused at mail, so it sent no message", "every recipient was refused, so the session sent no message",
                       "the session was refused at data, so it sent no message"] {
            #expect(tested.stdout.contains("""
                no header on the message contains "Received-SPF: fail": "Received-SPF: fail" is not on it (\(reason))
                """), "\(tested.stdout)")
        }
        #expect(tested.stdout.hasSuffix("1 passed, 3 failed\n"), "\(tested.stdout)")

        let run = try self.runSession(in: workspace, from: "nodata@x.test")
        #expect(run.stdout.contains("  header Received-SPF: fail (not on the message: the session was refused at data, so it sent no message)\n"),
                "\(run.stdout)")
        #expect(run.stdout.hasSuffix("session ended at data\n"), "\(run.stdout)")
    }

    @Test("dry_run in vrules test and vrules run --dry-run play a dry run: the refusals answered DUNNO carry the headers")
    func dryRunSessions() throws {
        let rules = """
        return {
          mail = { rule("spf", function(ctx)
            ctx.add_header("Received-SPF", "fail")
            ctx.add_header("Authentication-Results", "x.test; spf=fail")
            ctx.add_header("X-Third", "1")
            if ctx.mail_from.local_part == "spoof" then return reject(replies.spf_fail) end
          end) },
          data = { rule("no data", function(ctx) return reject("554 5.7.1 no data today") end) },
        }
        """
        let workspace = try Workspace(rules: rules, tests: ["d_test.lua": """
        return {
          dry_run = true,
          tests = {
            { name = "refused at mail", client_ip = "192.0.2.10", helo = "x.test", mail_from = "spoof@x.test",
              rcpt = { "b@x.test", "c@x.test" },
              expect = { mail = "550 5.7.23", rcpt = "not run", data = "not run" },
              headers = { "Received-SPF: fail", "Authentication-Results: x.test; spf=fail", "X-Third: 1" } },
            { name = "one recipient, two answers", client_ip = "192.0.2.10", helo = "x.test", mail_from = "spoof@x.test",
              rcpt = "b@x.test", expect = { mail = "550 5.7.23" }, headers = { "X-Third" } },
            { name = "enforced", dry_run = false, client_ip = "192.0.2.10", helo = "x.test", mail_from = "spoof@x.test",
              rcpt = "b@x.test", expect = { mail = "550 5.7.23" }, headers = { "Received-SPF: fail" } },
          },
        }
        """, "bad_test.lua": """
        return { tests = { { dry_run = "yes", expect = { connect = "next" } } } }
        """])
        defer { workspace.remove() }
        let tested = try workspace.run(["rules/tests/d_test.lua"])
        #expect(tested.stdout.contains("""
            no header on the message contains "X-Third": "X-Third: 1" is not on it (no answer was left to carry it
            """), "\(tested.stdout)")
        #expect(tested.stdout.contains("""
            no header on the message contains "Received-SPF: fail": "Received-SPF: fail" is not on it \
            (the session was refused at mail, so it sent no message)
            """), "\(tested.stdout)")
        #expect(tested.stdout.hasSuffix("1 passed, 2 failed\n"), "\(tested.stdout)")
        let bad = try workspace.run(["rules/tests/bad_test.lua"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("the test file does not load: test 'test #1': dry_run must be true or false, got string"),
                "\(bad.stdout)")

        let run = try self.runSession(in: workspace, from: "spoof@x.test", options: ["--dry-run"])
        #expect(run.stdout.contains("mail: reject 550 5.7.23 "), "\(run.stdout)")
        #expect(run.stdout.contains(" (dry run: answered DUNNO)\n"), "\(run.stdout)")
        #expect(run.stdout.hasSuffix("""
            dry run: the session would have ended at mail; it went on
            Received-SPF: fail
            Authentication-Results: x.test; spf=fail

            """), "\(run.stdout)")
        // Refused at DATA: the DATA answer carries the second header.
        let data = try self.runSession(in: workspace, from: "a@x.test", options: ["--dry-run", "--json"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(data.stdout.utf8)) as? [String: Any])
        #expect(object["dry_run"] as? Bool == true)
        #expect(object["stopped_at"] as? String == "data")
        #expect((object["message_headers"] as? [[String: String]])?.map { $0["name"] ?? "" } == ["Received-SPF", "Authentication-Results"])
        // [policy] dry_run in the configuration file makes vrules run play one, as it makes vrules serve.
        let config = workspace.url.appendingPathComponent("vrules.toml")
        try "[policy]\ndry_run = true\n".write(to: config, atomically: true, encoding: .utf8)
        let configured = try self.runSession(in: workspace, from: "spoof@x.test", options: ["--config", config.path])
        #expect(configured.stdout.hasSuffix("Authentication-Results: x.test; spf=fail\n"), "\(configured.stdout)")
        try FileManager.default.removeItem(at: config)
        let enforced = try self.runSession(in: workspace, from: "spoof@x.test")
        #expect(enforced.stdout.hasSuffix("session ended at mail\n"), "\(enforced.stdout)")
    }

    @Test("a header added at preq is not on the message in vrules test or vrules run, and they say why")
    func headersAtEndOfData() throws {
        let rules = """
        return {
          data = { rule("on time", function(ctx) ctx.add_header("X-Data", "1") end) },
          preq = { rule("too late", function(ctx) ctx.add_header("X-Late", "1") end) },
        }
        """
        let workspace = try Workspace(rules: rules, tests: ["h_test.lua": """
        return {
          tests = {
            { name = "data", client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@x.test", rcpt = "b@x.test",
              expect = { data = "next" }, headers = { "X-Data: 1" } },
            { name = "preq", client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@x.test", rcpt = "b@x.test",
              expect = { data = "next" }, headers = { "X-Late" } },
          },
        }
        """])
        defer { workspace.remove() }
        let tested = try workspace.run([])
        #expect(tested.stdout.contains("""
            no header on the message contains "X-Late": "X-Late: 1" is not on it (Postfix adds no header at end of data: add it at rcpt or data)
            """), "\(tested.stdout)")
        #expect(tested.stdout.hasSuffix("1 passed, 1 failed\n"), "\(tested.stdout)")

        let run = try self.runSession(in: workspace, from: "a@x.test")
        #expect(run.stdout.contains("  header X-Late: 1 (not on the message: Postfix adds no header at end of data: add it at rcpt or data)\n"),
                "\(run.stdout)")
        #expect(run.stdout.hasSuffix("session completed\nX-Data: 1\n"), "\(run.stdout)")
        let json = try self.runSession(in: workspace, from: "a@x.test", options: ["--json"])
        #expect(json.stdout.contains("\"headers_not_on_message\""), "\(json.stdout)")
    }

    @Test("dns = \"network\" asks the resolver configured in --config")
    func networkTests() async throws {
        let records = try ZoneFile.parse("""
        $ORIGIN test.
        host A 192.0.2.10
        $ORIGIN 2.0.192.in-addr.arpa.
        10 PTR host.test.
        """)
        let server = try await ScriptedDNSServer.start(script: ScriptedDNSServer.authoritative(records: records))
        let workspace = try Workspace(rules: Self.rules, tests: ["n_test.lua": """
        return {
          dns = "network",
          tests = {
            { name = "confirmed over the network", client_ip = "192.0.2.10", expect = { connect = "next" }, vars = { iprev = "pass" } },
            { name = "no PTR over the network", client_ip = "192.0.2.99", expect = { connect = "550 5.7.25" } },
          },
        }
        """])
        defer { workspace.remove() }
        let config = workspace.url.appendingPathComponent("vrules.toml").path
        try "[server.dns]\ntype = \"custom\"\nservers = [\"127.0.0.1:\(server.address.port)\"]\n[server.dns.options]\ntimeout = \"1s\"\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let output = try await Task.detached { try workspace.run(["--config", config]) }.value
        #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
        #expect(output.stdout.hasSuffix("2 passed, 0 failed\n"))
        await server.stop()

        // A --config that cannot be read is refused before any test runs, as every command refuses it.
        let missing = workspace.url.appendingPathComponent("missing.toml").path
        let unreadable = try workspace.run(["--config", missing])
        #expect(unreadable.status == 2)
        #expect(unreadable.stderr == "vrules: \(missing):1:1: error: no such file [unreadable-file]\n", "\(unreadable.stderr)")
    }

    @Test("a test of Postfix's requests checks ctx.vars after each answer: a repeated question does not count twice")
    func requestsVars() throws {
        let workspace = try Workspace(rules: """
            return {
              mail = { action("sender", function(ctx) ctx.vars.sender = ctx.mail_from.address end) },
              rcpt = { action("count", function(ctx) ctx.vars.count = (ctx.vars.count or 0) + 1 end) },
              data = { action("seen", function(ctx) ctx.vars.data = true end) },
            }
            """, tests: ["vars_test.lua": """
            return {
              tests = {
                { name = "vars after each answer",
                  request = { client_address = "192.0.2.10", instance = "1", sender = "a@x.test" },
                  requests = {
                    { protocol_state = "RCPT", recipient = "b@x.test", answer = "DUNNO", vars = { sender = "a@x.test", count = 1 } },
                    { protocol_state = "RCPT", recipient = "b@x.test", answer = "DUNNO", vars = { count = 1 } },
                    { protocol_state = "RCPT", recipient = "c@x.test", answer = "DUNNO", vars = { count = 2 } },
                    { protocol_state = "DATA", recipient_count = 2, answer = "DUNNO", vars = { count = 2, data = true } },
                    { protocol_state = "END-OF-MESSAGE", recipient_count = 2, answer = "DUNNO", vars = { count = 2 } },
                  } },
                { name = "wrong vars",
                  request = { client_address = "192.0.2.10", instance = "2", sender = "a@x.test" },
                  requests = {
                    { protocol_state = "RCPT", recipient = "b@x.test", answer = "DUNNO", vars = { count = 3, data = true } },
                    { protocol_state = "WEIRD", answer = "451 4.3.0 Unknown policy protocol state, try again later", vars = { count = 1 } },
                  } },
              },
            }
            """, "misplaced_test.lua": """
            return { tests = { { name = "vars beside requests", vars = { count = 1 },
              requests = { { protocol_state = "RCPT", client_address = "192.0.2.1", answer = "DUNNO" } } } } }
            """, "shape_test.lua": """
            return { tests = { { name = "vars not a table",
              requests = { { protocol_state = "RCPT", client_address = "192.0.2.1", answer = "DUNNO", vars = "count" } } } } }
            """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 1)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("ok - rules/tests/vars_test.lua: vars after each answer"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/vars_test.lua: wrong vars"), "\(output.stdout)")
        #expect(lines.contains("    request 1 (RCPT): ctx.vars.count: expected 3, got 1"), "\(output.stdout)")
        #expect(lines.contains("    request 1 (RCPT): ctx.vars.data: expected true, got nil"), "\(output.stdout)")
        #expect(lines.contains("    request 2 (WEIRD): ctx.vars.count: expected 1, got nil"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/misplaced_test.lua: the test file does not load: test 'vars beside requests': "
                               + "'vars' goes in a request of a test of requests: the ctx.vars its transaction holds after that answer"),
                "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/shape_test.lua: the test file does not load: test 'vars not a table': "
                               + "requests[1].vars must be a table of key = value"), "\(output.stdout)")
        #expect(lines.last == "1 passed, 3 failed", "\(output.stdout)")
    }

    @Test("a test of Postfix's requests: each answer checked in order, a wrong one named; a misspelt attribute fails the load")
    func requestsTests() throws {
        let workspace = try Workspace(rules: """
            return {
              connect = { rule("block", function(ctx)
                if ctx.client.ip == "192.0.2.66" then log.info("blocking", ctx.client.ip) return reject("550 5.7.1 blocked") end
              end) },
              mail = { rule("mark", function(ctx) ctx.add_header("X-One", "1") ctx.add_header("X-Two", "2") end) },
            }
            """, tests: ["requests_test.lua": """
            return {
              tests = {
                { name = "answers in order",
                  request = { client_address = "192.0.2.10", instance = "1", sender = "a@x.test" },
                  requests = {
                    { protocol_state = "RCPT", recipient = "b@x.test", answer = "PREPEND X-One: 1" },
                    { protocol_state = "RCPT", recipient = "b@x.test", answer = "PREPEND X-Two: 2" },
                    { protocol_state = "DATA", recipient_count = 1, answer = "DUNNO" },
                    { protocol_state = "RCPT", client_address = "192.0.2.66", instance = "2", recipient = "d@x.test",
                      answer = "550 5.7.1 blocked" },
                  } },
                { name = "a dry run answers the refusal DUNNO", dry_run = true,
                  request = { client_address = "192.0.2.66", instance = "3" },
                  requests = { { protocol_state = "CONNECT", answer = "DUNNO" } } },
                { name = "a wrong answer, a log line not logged",
                  request = { client_address = "192.0.2.66", instance = "4" }, logs = { "blocking 192.0.2.66", "never logged" },
                  requests = { { protocol_state = "RCPT", sender = "c@x.test", recipient = "d@x.test", answer = "DUNNO" } } },
              },
            }
            """, "typo_test.lua": """
            return { tests = { { name = "typo", requests = {
              { protocol_sate = "RCPT", client_address = "192.0.2.1", answer = "DUNNO" } } } } }
            """])
        defer { workspace.remove() }
        let output = try workspace.run([])
        #expect(output.status == 1)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("ok - rules/tests/requests_test.lua: answers in order"), "\(output.stdout)")
        #expect(lines.contains("ok - rules/tests/requests_test.lua: a dry run answers the refusal DUNNO"), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/requests_test.lua: a wrong answer, a log line not logged"), "\(output.stdout)")
        #expect(lines.contains(#"    request 1 (RCPT): expected answer "DUNNO", got "550 5.7.1 blocked" (connect: reject, rule "block")"#),
                "\(output.stdout)")
        #expect(lines.contains(#"    no log line contains "never logged" (log: info connect [block] blocking 192.0.2.66)"#), "\(output.stdout)")
        #expect(!output.stdout.contains(#"no log line contains "blocking"#), "\(output.stdout)")
        #expect(lines.contains("FAIL - rules/tests/typo_test.lua: the test file does not load: test 'typo': requests[1]: "
                               + "'protocol_sate' is not an attribute of Postfix's policy protocol (did you mean 'protocol_state'?)"),
                "\(output.stdout)")
        #expect(lines.last == "2 passed, 2 failed", "\(output.stdout)")

        // [policy] unknown_state_action of --config answers a state vrules does not know, as in vrules serve.
        try """
            return { tests = { { name = "unknown state", request = { client_address = "192.0.2.10", instance = "5" },
              requests = { { protocol_state = "WEIRD", answer = "DUNNO" } } } } }
            """.write(to: workspace.url.appendingPathComponent("rules/tests/requests_test.lua"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: workspace.url.appendingPathComponent("rules/tests/typo_test.lua"))
        let defaulted = try workspace.run([])
        #expect(defaulted.stdout.contains(#"expected answer "DUNNO", got "451 4.3.0 Unknown policy protocol state, try again later""#),
                "\(defaulted.stdout)")
        try "[policy]\nunknown_state_action = \"DUNNO\"\n".write(to: workspace.url.appendingPathComponent("vrules.toml"),
                                                               atomically: true, encoding: .utf8)
        let configured = try workspace.run(["--config", "vrules.toml"])
        #expect(configured.status == 0 && configured.stdout.hasSuffix("1 passed, 0 failed\n"), "\(configured.stdout)\(configured.stderr)")
    }

    @Test("the shipped tests of the default policy and the examples pass, and make every rule of it decide")
    func shippedTests() throws {
        let output = try CLI.run(["test", "rules/tests", "examples/tests", "--require-coverage"])
        #expect(output.status == 0, "\(output.stdout)")
        #expect(output.stdout.contains("37 passed, 0 failed\n"))
        #expect(output.stdout.hasSuffix("coverage: 7 of 7 entries ran; 6 of 6 rules decided at least once\n"), "\(output.stdout)")
    }
}
