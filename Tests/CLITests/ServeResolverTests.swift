import Foundation
import Policy
import Testing
import VrulesTestSupport

/// What `vrules run` shows for IPv4-mapped clients and internationalized senders holds for
/// Postfix's policy protocol too: `vrules serve` with the shipped default policy.
@Suite("vrules serve: IPv4-mapped clients and IDN senders", .serialized)
struct ServeResolverTests {
    func request(_ instance: String, client: String, sender: String) -> [String: String] {
        ["request": "smtpd_access_policy", "protocol_state": "RCPT", "client_address": client, "client_port": "4000",
         "helo_name": "mail.good.example", "sender": sender, "recipient": "bob@good.example", "instance": instance]
    }

    @Test("a mapped client and a U-label sender domain are answered as their plain forms; an invalid U-label is refused")
    func mappedAndInternationalized() throws {
        let example = try String(contentsOf: CLI.packageRoot.appendingPathComponent("examples/example.zone"), encoding: .utf8)
        let directory = try CLI.scratch(["idn.zone": example + """

        $ORIGIN xn--bcher-kva.example.
        @     IN MX 10 mail
        mail  IN A 192.0.2.40
        """])
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServeProcess(arguments: ["--rules", "rules/main.lua",
                                                  "--zone", directory.appendingPathComponent("idn.zone").path])
        let client = try PolicyClient(port: server.port)
        let context = Comment(rawValue: server.log)
        // Accepted: the first answer of each transaction carries its Received-SPF header.
        #expect(try client.ask(self.request("a", client: "192.0.2.10", sender: "jörg@bücher.example"))?
            .hasPrefix("PREPEND Received-SPF: none") == true, context)
        #expect(try client.ask(self.request("b", client: "::ffff:192.0.2.10", sender: "jörg@bücher.example"))?
            .hasPrefix("PREPEND Received-SPF: none") == true, context)
        #expect(try client.ask(self.request("c", client: "::ffff:192.0.2.66", sender: "a@good.example"))
                == "550 5.7.25 Reverse DNS validation failed", context)
        let invalid = try client.ask(self.request("d", client: "192.0.2.10", sender: "a@☃.example"))
        #expect(invalid == "550 5.1.7 Sender address domain is not a valid domain name", "\(invalid ?? "nil")\n\(server.log)")
        #expect(server.stop() == 0)
        #expect(server.log.contains("invalid domain name '☃.example'"), Comment(rawValue: server.log))
    }
}
