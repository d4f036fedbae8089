import Foundation
import Testing
import VrulesTestSupport

/// `vrules answer`: a Postfix request stream answered as `vrules serve` answers it, offline,
/// on the shipped default policy and the example zone.
@Suite("vrules answer")
struct AnswerCommandTests {
    /// One request as Postfix sends it, with the empty line after it.
    static func request(_ state: String, client: String = "192.0.2.10", helo: String = "mail.good.example",
                        instance: String = "7.1", _ extra: [String] = []) -> String {
        (["request=smtpd_access_policy", "protocol_state=\(state)", "client_address=\(client)", "helo_name=\(helo)",
          "server_name=mx.vrules.test", "instance=\(instance)"] + extra).joined(separator: "\n") + "\n\n"
    }

    /// A message to one recipient, with the service named in both restriction lists (so the
    /// RCPT question comes twice), then a client whose reverse DNS does not confirm.
    static let stream = request("RCPT", ["sender=a@good.example", "recipient=b@implicit.example"])
        + request("RCPT", ["sender=a@good.example", "recipient=b@implicit.example"])
        + request("DATA", ["sender=a@good.example", "recipient_count=1"])
        + request("END-OF-MESSAGE", ["sender=a@good.example", "recipient_count=1"])
        + request("RCPT", client: "192.0.2.66", helo: "x.example", instance: "8.1", ["sender=b@x.example", "recipient=c@implicit.example"])

    static func answer(_ stream: String, _ arguments: [String] = []) throws -> CLI.Output {
        let directory = try CLI.scratch(["requests.txt": stream])
        defer { try? FileManager.default.removeItem(at: directory) }
        return try CLI.run(["answer", "--zone", "examples/example.zone"] + arguments
                           + [directory.appendingPathComponent("requests.txt").path])
    }

    static func actions(_ output: String) -> [String] {
        output.split(separator: "\n").filter { $0.hasPrefix("action=") }.map { String($0.dropFirst(7)) }
    }

    @Test("each request gets serve's answer: stages run at the first, a repeated question reused, headers as PREPEND")
    func answersAsServe() throws {
        let output = try Self.answer(Self.stream)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(Self.actions(output.stdout) == [
            "PREPEND Received-SPF: none (mx.vrules.test: domain of good.example does not designate 192.0.2.10 as permitted sender) "
                + "client-ip=192.0.2.10; envelope-from=\"a@good.example\"; helo=mail.good.example; receiver=mx.vrules.test; identity=mailfrom",
            "PREPEND Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10; spf=none smtp.mailfrom=a@good.example",
            "DUNNO",
            "DUNNO",
            "550 5.7.25 Reverse DNS validation failed",
        ], "\(output.stdout)")
        let blocks: [String] = Array(output.stdout.components(separatedBy: "== request ").dropFirst())
        #expect(blocks.count == 5)
        // The first RCPT of a transaction runs connect, helo and mail first, as serve does.
        let stages = blocks[0].split(separator: "\n").filter { !$0.hasPrefix(" ") && $0.contains(": next") }
            .map { String($0.prefix(while: { $0 != ":" })) }
        #expect(stages == ["connect", "helo", "mail", "rcpt"], "\(blocks[0])")
        #expect(blocks[0].contains("spf.check_host(192.0.2.10 good.example <a@good.example>) -> none"), "\(blocks[0])")
        #expect(blocks[1].contains("rcpt: next 250 2.1.5 Recipient ok (the result of the same question asked before)"), "\(blocks[1])")
        #expect(!blocks[1].contains("query"), "\(blocks[1])")
        #expect(blocks[4].hasPrefix("5: RCPT, instance 8.1, client 192.0.2.66, helo x.example, sender <b@x.example>, recipient <c@implicit.example>"))
        #expect(blocks[4].contains("rule \"forward-confirmed reverse DNS\": reject 550 5.7.25"), "\(blocks[4])")
        #expect(blocks[4].contains("connect: reject 550 5.7.25 Reverse DNS validation failed"), "\(blocks[4])")
    }

    @Test("--dry-run and [policy] answer as serve configured so: the refusal answered with its header, a recipient past max_recipients refused")
    func settings() throws {
        let dryRun = try Self.answer(Self.stream, ["--dry-run"])
        #expect(dryRun.status == 0)
        #expect(Self.actions(dryRun.stdout).last == "PREPEND Authentication-Results: mx.vrules.test; iprev=fail policy.iprev=192.0.2.66",
                "\(dryRun.stdout)")
        let second = Self.request("RCPT", ["sender=a@good.example", "recipient=c@implicit.example"])
        let directory = try CLI.scratch(["vrules.toml": "[policy]\nmax_recipients = 1\n",
                                         "requests.txt": Self.request("RCPT", ["sender=a@good.example", "recipient=b@implicit.example"]) + second])
        defer { try? FileManager.default.removeItem(at: directory) }
        let limited = try CLI.run(["answer", "--zone", "examples/example.zone", "--config", directory.appendingPathComponent("vrules.toml").path,
                                   directory.appendingPathComponent("requests.txt").path])
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(Self.actions(limited.stdout).last?.hasPrefix("452 4.5.3") == true, "\(limited.stdout)")
        #expect(limited.stdout.contains("  a recipient past what a transaction may hold ([policy] max_recipients, or its share of memory): "
                                        + "answered without rules\n"), "\(limited.stdout)")
        let unknown = try Self.answer(Self.request("WEIRD"))
        #expect(Self.actions(unknown.stdout) == ["451 4.3.0 Unknown policy protocol state, try again later"], "\(unknown.stdout)")
        #expect(unknown.stdout.contains("  protocol_state WEIRD is not one vrules knows: the answer is [policy] unknown_state_action\n"),
                "\(unknown.stdout)")
    }

    @Test("a request serve cannot answer ends the stream there, with the reason and status 1")
    func unanswerable() throws {
        let first = Self.request("RCPT", ["sender=a@good.example", "recipient=b@implicit.example"])
        for (bad, reason) in [("request=junk\nprotocol_state=RCPT\nclient_address=192.0.2.10\n\n", "request 2 cannot be answered (unknown request type"),
                              ("request=smtpd_access_policy\nprotocol_state=RCPT\n\n", "request 2 cannot be answered (missing attribute"),
                              ("request=smtpd_access_policy\nno equals sign here\n\n", "request 2 cannot be read (malformed attribute")] {
            let output = try Self.answer(first + bad + first)
            #expect(output.status == 1, "\(output.stdout)\(output.stderr)")
            #expect(Self.actions(output.stdout).count == 1, "\(output.stdout)")
            let last = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasPrefix(reason) && last.hasSuffix("vrules serve closes the connection there"), "\(last)")
        }
    }

    @Test("the last request's empty line may be left out; standard input; JSON")
    func inputsAndJSON() throws {
        let trimmed = String(Self.stream.dropLast())
        #expect(Self.actions(try Self.answer(trimmed).stdout).count == 5)
        let empty = try Self.answer("")
        #expect(empty.status == 0 && empty.stdout == "no requests\n", "\(empty.stdout)")

        let directory = try CLI.scratch(["requests.txt": Self.stream])
        defer { try? FileManager.default.removeItem(at: directory) }
        let piped = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "exec \"$0\" answer --zone examples/example.zone --json - < \"$1\"", CLI.binary.path,
            directory.appendingPathComponent("requests.txt").path,
        ], in: CLI.packageRoot)
        #expect(piped.status == 0, "\(piped.stderr)")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(piped.stdout.utf8)) as? [String: Any])
        let answers = try #require(root["answers"] as? [[String: Any]])
        #expect(answers.count == 5)
        #expect(root["error"] == nil)
        #expect((answers[0]["stages"] as? [[String: Any]])?.compactMap { $0["stage"] as? String } == ["connect", "helo", "mail", "rcpt"])
        #expect(answers[1]["reused"] as? Bool == true)
        #expect((answers[1]["stages"] as? [Any])?.isEmpty == true)
        #expect(answers[4]["action"] as? String == "550 5.7.25 Reverse DNS validation failed")
        #expect(answers[4]["stage"] as? String == "connect")
        #expect(answers[4]["decided_by"] as? String == "forward-confirmed reverse DNS")
        #expect(answers[4]["recipient"] as? String == "c@implicit.example")

        let garbled = try Self.answer(Self.request("RCPT") + "request=junk\nclient_address=192.0.2.10\n\n", ["--json"])
        #expect(garbled.status == 1)
        let garbledRoot = try #require(try JSONSerialization.jsonObject(with: Data(garbled.stdout.utf8)) as? [String: Any])
        #expect((garbledRoot["answers"] as? [Any])?.count == 1)
        #expect((garbledRoot["error"] as? String)?.hasPrefix("request 2 cannot be answered (unknown request type") == true, "\(garbled.stdout)")

        let folder = try CLI.run(["answer", "--zone", "examples/example.zone", directory.path])
        #expect(folder.status == 2)
        #expect(folder.stderr.contains("cannot read requests") && folder.stderr.contains("a folder"), "\(folder.stderr)")
    }
}
