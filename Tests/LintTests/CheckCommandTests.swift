import Foundation
import Testing
import VrulesTestSupport

@Suite("vrules check: the broken-script corpus")
struct CorpusTests {
    static let directory = "Tests/Fixtures/lint"

    static let fixtures: [String] = {
        let url = CLI.packageRoot.appendingPathComponent(Self.directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { $0.hasSuffix(".lua") }.sorted()
    }()

    @Test("the corpus has at least 20 broken scripts")
    func size() {
        #expect(Self.fixtures.count >= 20)
    }

    @Test("each script gives exactly the diagnostics its first lines expect, every one of them", arguments: Self.fixtures)
    func fixture(_ name: String) throws {
        let path = "\(Self.directory)/\(name)"
        let text = try String(contentsOf: CLI.packageRoot.appendingPathComponent(path), encoding: .utf8)
        let expectations = text.split(separator: "\n").prefix { $0.hasPrefix("-- expect: ") }
        #expect(!expectations.isEmpty)
        let expected = expectations.map { "\(path):\($0.dropFirst("-- expect: ".count))\n" }.joined()
        let output = try CLI.run(["check", path])
        #expect(output.stdout == expected)
        // Warnings alone leave the exit status 0.
        #expect(output.status == (expected.contains(": error: ") ? 1 : 0))
    }
}

@Suite("vrules check")
struct CheckCommandTests {
    @Test("the shipped policy, its module and its tests check clean")
    func shippedRulesAreClean() throws {
        let output = try CLI.run(["check"])
        #expect(output.stdout == "")
        #expect(output.status == 0)
        let explicit = try CLI.run(["check", "rules/main.lua", "rules/lib/checks.lua", "rules/tests/main_test.lua"])
        #expect(explicit.stdout == "")
        #expect(explicit.status == 0)
        let directories = try CLI.run(["check", "rules", "examples"])
        #expect(directories.stdout == "")
        #expect(directories.status == 0)
    }

    static let several = """
        local checks = require "lib.checks"
        return {
          connect = {
            rule("a", function(ctx) return acept() end),
            rule("b", function(ctx) log.inof("x"); return defer(replies.null_mx) end),
            rule("c", function(ctx) if dns.lookpu(ctx.client.ip) then return reject(451) end end),
          },
        }

        """

    @Test("several findings in one file are sorted by line and column, with their codes")
    func sorted() throws {
        let directory = try CLI.scratch(["main.lua": Self.several, "lib/checks.lua": "return { x = 1 }\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == """
            main.lua:4:36: error: undefined global 'acept' (did you mean 'accept'?) [undefined-global]
            main.lua:5:33: error: unknown field 'inof' of 'log' (did you mean 'info'?) [unknown-member]
            main.lua:5:51: error: defer() takes a 4xx reply, got 550 [invalid-reply]
            main.lua:6:5: warning: rule 'c' never runs: rule 'b' (line 5) returns defer() every time the connect stage runs, \
            and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
            main.lua:6:36: error: unknown field 'lookpu' of 'dns' (did you mean 'lookup'?) [unknown-member]
            main.lua:6:70: error: expected a reply (reply(...), a "CODE X.Y.Z text" string or a replies constant), got number [invalid-reply]

            """)
        #expect(output.status == 1)
    }

    @Test("a refusal's literal reply Postfix would get otherwise is a warning saying what it gets; an accept's reply, never sent, is not")
    func replyChanged() throws {
        let directory = try CLI.scratch(["main.lua": """
            local checks = require "lib.checks"
            return { connect = {
              rule("a", function(ctx) if ctx.client.port == 1 then return reject(reply(550, "5.7.1", "Отказано")) end end),
              rule("b", function(ctx) if ctx.client.port == 2 then return defer("451 4.7.1 two  spaces") end end),
              rule("c", function(ctx) if ctx.client.port == 3 then return reject(reply(550, "5.7.1", "plain")) end end),
              rule("d", function(ctx) return accept(reply(250, "2.0.0", "Привет")) end),
            } }

            """, "lib/checks.lua": "return { x = 1 }\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == """
            main.lua:3:63: warning: Postfix gets this reply as "550 5.7.1 ????????" (a reply goes to Postfix as printable ASCII, \
            blanks collapsed, at most 400 characters) [reply-changed]
            main.lua:4:63: warning: Postfix gets this reply as "451 4.7.1 two spaces" (a reply goes to Postfix as printable ASCII, \
            blanks collapsed, at most 400 characters) [reply-changed]

            """, "\(output.stdout)")
        #expect(output.status == 0, "a warning: the rules still load and run")
    }

    @Test("--format json gives an array of path, line, column, severity, message, code")
    func json() throws {
        let directory = try CLI.scratch(["main.lua": Self.several, "lib/checks.lua": "return { x = 1 }\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "--format", "json", "main.lua"], in: directory)
        #expect(output.status == 1)
        let array = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 6)
        let first = try #require(array.first)
        #expect(Set(first.keys) == ["path", "line", "column", "severity", "message", "code"])
        #expect(first["path"] as? String == "main.lua")
        #expect(first["line"] as? Int == 4)
        #expect(first["column"] as? Int == 36)
        #expect(first["severity"] as? String == "error")
        #expect(first["code"] as? String == "undefined-global")
        #expect(first["message"] as? String == "undefined global 'acept' (did you mean 'accept'?)")

        let clean = try CLI.run(["check", "--format", "json", "rules/main.lua"])
        #expect(clean.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" ||
                clean.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        #expect(clean.status == 0)
    }

    @Test("usage errors exit with 2: a missing path, an unknown format")
    func usage() throws {
        let missing = try CLI.run(["check", "no/such/file.lua"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no/such/file.lua: no such file or directory"))
        let format = try CLI.run(["check", "--format", "xml", "rules/main.lua"])
        #expect(format.status == 2)
        let config = try CLI.run(["check", "--config", "no-such.toml", "rules/main.lua"])
        #expect(config.status == 2)
    }

    @Test("a warning alone exits 0; top-level globals are definitions visible to rule bodies")
    func warningsAndDefinitions() throws {
        let script = """
            limit = 3
            next = nil
            return { connect = { rule("r", function(ctx) if limit > 2 then return accept() end end) } }

            """
        let directory = try CLI.scratch(["main.lua": script])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == "main.lua:2:1: warning: redefines the built-in global 'next' [shadowed-global]\n")
        #expect(output.status == 0)
    }

    @Test("a function assigning a local of a script's or a module's top level is warned of; a rule's own locals are not")
    func sharedLocals() throws {
        let directory = try CLI.scratch([
            "main.lua": """
                local util = require "lib.util"
                local last_helo
                local seen = {}
                return {
                  helo = { rule("keep", function(ctx)
                    last_helo = ctx.helo
                    seen[ctx.helo] = true
                    local tries = 0
                    local function again() tries = tries + 1 end
                    again()
                    util.note()
                  end) },
                  mail = { rule("use", function(ctx) if last_helo ~= ctx.helo then return accept() end end) },
                }

                """,
            "lib/util.lua": "local util = {}\nlocal calls = 0\nfunction util.note()\n  calls = calls + 1\nend\nreturn util\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        let shared = ", a local of the script's top level, inside a function: every transaction running at once shares it "
            + "(keep a transaction's values in ctx.vars) [shared-local]\n"
        #expect(output.stdout == "lib/util.lua:4:3: warning: assignment to 'calls'\(shared)"
            + "main.lua:6:5: warning: assignment to 'last_helo'\(shared)"
            + "main.lua:7:5: warning: 'seen' gains an entry for each ctx.helo and no code here removes one: it grows with the "
            + "traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty "
            + "(remove old entries: set them to nil) [growing-table]\n")
        #expect(output.status == 0)
    }

    @Test("header-at-preq: a preq entry's function from a module is found in the module, once per directory checked")
    func headerAtPreqInModule() throws {
        let directory = try CLI.scratch([
            "main.lua": """
                local late = require "lib.late"
                return { data = { rule("on time", late.stamp) }, preq = { rule("from a module", late.stamp) } }

                """,
            "other.lua": """
                local late = require "lib.late"
                return { preq = { rule("again", late.stamp) } }

                """,
            "lib/late.lua": "local M = {}\nfunction M.stamp(ctx)\n  ctx.add_header(\"X-Module\", \"1\")\nend\nreturn M\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == "lib/late.lua:3:7: warning: a header added at preq ('from a module') cannot reach the message: "
            + "Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]\n")
        #expect(output.status == 0)
        let both = try CLI.run(["check", "."], in: directory)
        #expect(both.stdout.components(separatedBy: "[header-at-preq]").count == 2, "\(both.stdout)")
    }

    @Test("header-at-preq follows a call through a module's table, and the module's own local functions")
    func headerAtPreqThroughModule() throws {
        let directory = try CLI.scratch([
            "main.lua": """
                local util = require "lib.util"
                return {
                  rcpt = { rule("on time", function(ctx) util.mark(ctx) end) },
                  preq = {
                    rule("via module", function(ctx) util.mark(ctx) end),
                    rule("quiet", function(ctx) util.quiet(ctx) end),
                  },
                }

                """,
            "lib/util.lua": """
                local M = {}
                local function deep(ctx)
                  ctx.add_header("X-Deep", "1")
                end
                function M.mark(ctx)
                  deep(ctx)
                end
                M.quiet = function(ctx) return nil end
                return M

                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == "lib/util.lua:3:7: warning: a header added at preq ('via module', in a function it calls) cannot reach "
            + "the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]\n")
        #expect(output.status == 0)
    }

    @Test("scripts load under the configuration's [limits] memory, as vrules serve loads them")
    func loadUnderConfiguredMemory() throws {
        let directory = try CLI.scratch([
            "main.lua": "local kept = {}\nfor i = 1, 100000 do kept[i] = i end\nreturn {}\n",
            "small.toml": "[limits]\nmemory = \"1MiB\"\n",
            "large.toml": "[limits]\nmemory = \"64MiB\"\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = "main.lua:1:1: error: memory limit exceeded while the script loads (1MiB, [limits] memory) [load-error]\n"
        let small = try CLI.run(["check", "--config", "small.toml", "main.lua"], in: directory)
        #expect(small.stdout == refused)
        #expect(small.status == 1)
        let large = try CLI.run(["check", "--config", "large.toml", "main.lua"], in: directory)
        #expect(large.stdout == "")
        #expect(large.status == 0)
        // Both named: the script must load under each.
        let both = try CLI.run(["check", "large.toml", "small.toml", "main.lua"], in: directory)
        #expect(both.stdout == refused)
    }

    @Test("modules are followed through require: a misspelling inside a module is found at its own path")
    func modules() throws {
        let directory = try CLI.scratch([
            "main.lua": "local util = require \"lib.util\"\nreturn { helo = { rule(\"r\", function(ctx) return util.check(ctx) end) } }\n",
            "lib/util.lua": "local util = {}\nfunction util.check(ctx)\n  return rejct()\nend\nreturn util\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check", "main.lua"], in: directory)
        #expect(output.stdout == "lib/util.lua:3:10: error: undefined global 'rejct' (did you mean 'reject'?) [undefined-global]\n")
        #expect(output.status == 1)
    }

    @Test("test files: syntax errors, globals their empty environment lacks, and declarations vrules test refuses")
    func testFiles() throws {
        let directory = try CLI.scratch([
            "rules/main.lua": "return {}\n",
            "rules/tests/a_test.lua": "return { tests = { { name = \"x\", client_ip = ip } } }\n",
            "rules/tests/b_test.lua": "return { tests = {\n",
            "rules/tests/c_test.lua": "local zone = \"$ORIGIN x.test.\\nh A 192.0.2.1\\n\"\n"
                + "return { zone = zone, tests = { { name = \"y\", client_ip = \"192.0.2.1\", expect = { connect = \"next\" } } } }\n",
            "rules/tests/d_test.lua": "return { tests = {\n  { name = \"z\", client_ip = \"192.0.2.1\",\n    headres = { \"X\" } },\n} }\n",
            "rules/tests/e_test.lua": "return { tests = {} }\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check"], in: directory)
        #expect(output.stdout == """
            rules/tests/a_test.lua:1:46: error: undefined global 'ip' [undefined-global]
            rules/tests/b_test.lua:2:1: error: unexpected symbol near <eof> [syntax-error]
            rules/tests/d_test.lua:3:5: error: test 'z': unknown key 'headres' (did you mean 'headers'?) [invalid-test]
            rules/tests/e_test.lua:1:1: error: 'tests' must be a non-empty list of tests [invalid-test]

            """)
        #expect(output.status == 1)
        // The same words as vrules test.
        let tested = try CLI.run(["test", "rules/tests/d_test.lua"], in: directory)
        #expect(tested.stdout.contains("test 'z': unknown key 'headres' (did you mean 'headers'?)"), "\(tested.stdout)")
    }

    @Test("the configuration: unknown keys with the nearest spelling, types, durations, DNS enum values")
    func config() throws {
        let toml = """
            [server.dns]
            type = "gogle"

            [limits]
            instructons = 5
            memory = "64 MB"
            stage_timeout = "1 minute"

            [policy]
            listen = "127.0.0.1:10040"

            [polcy]

            """
        let directory = try CLI.scratch(["vrules.toml": toml, "rules/main.lua": "return {}\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try CLI.run(["check"], in: directory)
        #expect(output.stdout == """
            vrules.toml:2:1: error: server.dns.type: unknown resolver type 'gogle' (did you mean 'google'?) [config-value]
            vrules.toml:5:1: error: limits.instructons: unknown key (did you mean 'instructions'?) [config-unknown-key]
            vrules.toml:6:1: error: limits.memory: invalid size '64 MB' (use a whole number of bytes, or a number followed by KiB, MiB or GiB) [config-value]
            vrules.toml:7:1: error: limits.stage_timeout: invalid duration '1 minute' (use a whole number followed by ms, s or m, e.g. "60s") [config-value]
            vrules.toml:10:1: error: policy.listen: expected an array of strings, found a string [config-type]
            vrules.toml:12:2: error: polcy: unknown key (did you mean 'policy'?) [config-unknown-key]

            """)
        #expect(output.status == 1)

        let options = """
            [server.dns]
            type = "google"

            [server.dns.options]
            timeout = "5sec"

            """
        let second = try CLI.scratch(["v.toml": options])
        defer { try? FileManager.default.removeItem(at: second) }
        let dns = try CLI.run(["check", "v.toml"], in: second)
        #expect(dns.stdout == "v.toml:5:1: error: server.dns.options.timeout: invalid duration '5sec' (use a whole number followed by ms, s or m) (did you mean '5s'?) [config-value]\n")
        #expect(dns.status == 1)

        let syntax = try CLI.scratch(["v.toml": "[server\n"])
        defer { try? FileManager.default.removeItem(at: syntax) }
        let broken = try CLI.run(["check", "v.toml"], in: syntax)
        #expect(broken.stdout.hasPrefix("v.toml:1:"))
        #expect(broken.stdout.hasSuffix("[config-syntax]\n"))
        #expect(broken.status == 1)
    }
}
