import Foundation
import Testing
import VrulesTestSupport

/// The Authentication-Results values `authres` writes, read back by an independent parser:
/// Debian's `python3-authres` (the RFC 8601 library `postfix-policyd-spf-python` uses). It
/// refused `policy.iprev=2001:db8::5` unquoted, as vrules wrote it for an IPv6 client.
@Suite("Authentication-Results read by python3-authres")
struct AuthResOracleTests {
    struct Case {
        var arguments: [String]
        var authservID: String
        /// method, result, property type.name, property value as the parser gives it
        var expected: [[String]]
    }

    static let cases: [Case] = [
        Case(arguments: ["--client-ip", "192.0.2.10", "--helo", "mail.good.example", "--mail-from", "alice@good.example"],
             authservID: "mx.vrules.test",
             expected: [["iprev", "pass", "policy.iprev", "192.0.2.10"], ["spf", "none", "smtp.mailfrom", "alice@good.example"]]),
        Case(arguments: ["--client-ip", "2001:db8::5", "--helo", "mail.good.example", "--mail-from", "a=b+c@good.example"],
             authservID: "mx.vrules.test",
             expected: [["iprev", "pass", "policy.iprev", "2001:db8::5"], ["spf", "none", "smtp.mailfrom", "a=b+c@good.example"]]),
        Case(arguments: ["--client-ip", "192.0.2.10", "--helo", "[192.0.2.1]", "--mail-from", ""],
             authservID: "mx.vrules.test",
             expected: [["iprev", "pass", "policy.iprev", "192.0.2.10"], ["spf", "none", "smtp.helo", "[192.0.2.1]"]]),
        // (A server name that needs quoting, such as "mx(1)", is a quoted authserv-id, which
        // RFC 8601 allows and this parser refuses: not compared.)
        Case(arguments: ["--client-ip", "192.0.2.10", "--helo", "mail.good.example", "--server-name", "mx-1.example",
                         "--mail-from", "\"odd q\"@good.example"],
             authservID: "mx-1.example",
             // The parser keeps a quoted-string's backslashes.
             expected: [["iprev", "pass", "policy.iprev", "192.0.2.10"], ["spf", "none", "smtp.mailfrom", #"\"odd q\"@good.example"#]]),
    ]

    static let parser = """
        import authres, json, sys
        out = []
        for line in sys.stdin.read().splitlines():
            try:
                h = authres.AuthenticationResultsHeader.parse_value(line)
                out.append({"id": h.authserv_id, "results": [[r.method, r.result] + sum(([p.type + "." + p.name, p.value] for p in r.properties), []) for r in h.results]})
            except Exception as e:
                out.append({"error": "%s: %s" % (type(e).__name__, e)})
        print(json.dumps(out))
        """

    @Test("every value parses, with the authserv-id, results and properties it was written with")
    func parsesBack() throws {
        let directory = try CLI.scratch(["rules.lua": """
            return { mail = { rule("ar", function(ctx)
              ctx.add_header("Authentication-Results", authres(ctx, { iprev = "pass", spf = spf.check(ctx) }))
            end) } }
            """])
        defer { try? FileManager.default.removeItem(at: directory) }
        var values: [String] = []
        for testCase in Self.cases {
            // A recipient, so that the message exists and an answer carries the header.
            let output = try CLI.run(["run", "--rules", "rules.lua", "--zone",
                                      CLI.packageRoot.appendingPathComponent("examples/example.zone").path, "--rcpt", "bob@good.example"]
                                     + testCase.arguments, in: directory)
            let header = output.stdout.split(separator: "\n").last { $0.hasPrefix("Authentication-Results: ") }
            values.append(String(try #require(header, "\(output.stdout)\(output.stderr)").dropFirst("Authentication-Results: ".count)))
        }
        let input = directory.appendingPathComponent("values.txt")
        try (values.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let output = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"),
                                          ["-c", "/usr/bin/python3 -c \"$0\" < \"$1\"", Self.parser, input.path])
        #expect(output.status == 0, "python3-authres installed? (scripts/test.sh installs it): \(output.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(parsed.count == Self.cases.count)
        for (index, (testCase, result)) in zip(Self.cases, parsed).enumerated() {
            #expect(result["error"] == nil, "\(values[index]): \(result["error"] ?? "")")
            #expect(result["id"] as? String == testCase.authservID, "\(values[index])")
            #expect(result["results"] as? [[String]] == testCase.expected, "\(values[index])")
        }
    }
}
