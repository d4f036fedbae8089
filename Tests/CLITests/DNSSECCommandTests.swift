import DNS
import DNSResolver
import DNSTestSupport
import Foundation
import Testing
import VrulesTestSupport

/// `vrules dns ... ` with `validate = true` against a signed hierarchy served by the fake
/// server, trusted through a `trust_anchor_file` holding the private root's DS.
@Suite("vrules dns with DNSSEC validation", .serialized)
struct DNSSECCommandTests {
    static func hierarchy() -> (SignedHierarchy, root: TestZone) {
        let now = UInt32(Date().timeIntervalSince1970)
        let from = now - 86400
        let until = now + 30 * 86400
        let root = TestZone(name: "", records: [], inception: from, expiration: until)
        let zones = [
            TestZone(name: "test", records: [], inception: from, expiration: until),
            TestZone(name: "example.test", algorithm: 15, records: [
                DNSResourceRecord(name: "www.example.test", ttl: 300, data: .a(IPAddress("192.0.2.1")!)),
            ], inception: from, expiration: until),
            TestZone(name: "expired.test", records: [
                DNSResourceRecord(name: "www.expired.test", ttl: 300, data: .a(IPAddress("192.0.2.2")!)),
            ], inception: from - 90 * 86400, expiration: 1_795_132_800),
            TestZone(name: "plain.test", signed: false, records: [
                DNSResourceRecord(name: "www.plain.test", ttl: 300, data: .a(IPAddress("192.0.2.3")!)),
            ], inception: from, expiration: until),
        ]
        return (SignedHierarchy(zones: [root] + zones), root)
    }

    static func anchorText(_ root: TestZone) -> String {
        root.dsRecords.map { record -> String in
            let ds = try! DSData(rdata: record.data.rawData!)
            let hex = ds.digest.map { String(format: "%02X", $0) }.joined()
            return ". 3600 IN DS \(ds.keyTag) \(ds.algorithm) \(ds.digestType) ( \(hex.prefix(32))\n    \(hex.dropFirst(32)) )"
        }.joined(separator: "\n") + "\n"
    }

    static func configuration(server: String, anchorFile: String = "root.anchor") -> String {
        """
        [server.dns]
        type = "custom"
        servers = ["\(server)"]

        [server.dns.options]
        timeout = "1s"
        attempts = 0
        validate = true
        trust_anchor_file = "\(anchorFile)"
        """
    }

    func run(_ arguments: [String], in directory: URL) async throws -> CLI.Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try CLI.run(arguments, in: directory) })
            }
        }
    }

    func json(_ output: CLI.Output) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(output.stdout)\(output.stderr)")
    }

    func withSignedServer(_ body: (URL) async throws -> Void) async throws {
        let (hierarchy, root) = Self.hierarchy()
        let server = try await ScriptedDNSServer.start(script: hierarchy.script)
        let directory = try CLI.scratch([
            "vrules.toml": Self.configuration(server: server.address.description),
            "root.anchor": "; the private root's key-signing key\n" + Self.anchorText(root),
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            try await body(directory)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("dns query --json: \"security\" on the result and each query: secure, insecure, bogus with the reason")
    func queryJSON() async throws {
        try await self.withSignedServer { directory in
            let secure = try await self.run(["dns", "query", "www.example.test", "A", "--json", "--config", "vrules.toml"], in: directory)
            #expect(secure.status == 0, "\(secure.stdout)\(secure.stderr)")
            let report = try self.json(secure)
            let result = try #require(report["result"] as? [String: Any])
            #expect(result["security"] as? String == "secure", "\(secure.stdout)")
            #expect(result["reason"] == nil)
            let queries = try #require(report["queries"] as? [[String: Any]])
            #expect(queries.map { $0["security"] as? String } == ["secure"])

            let plain = try self.json(try await self.run(["dns", "query", "www.plain.test", "A", "--json", "--config", "vrules.toml"], in: directory))
            let plainResult = try #require(plain["result"] as? [String: Any])
            #expect(plainResult["security"] as? String == "insecure")
            #expect(plainResult["reason"] as? String == "unsigned delegation at plain.test")

            let bogus = try await self.run(["dns", "query", "www.expired.test", "A", "--json", "--config", "vrules.toml"], in: directory)
            #expect(bogus.status == 1, "\(bogus.stdout)\(bogus.stderr)")
            let bogusReport = try self.json(bogus)
            let bogusResult = try #require(bogusReport["result"] as? [String: Any])
            #expect(bogusResult["error"] as? String == "bogus")
            #expect(bogusResult["security"] as? String == "bogus")
            #expect((bogusResult["reason"] as? String)?.hasPrefix("RRSIG expired 2026-11-20T00:00:00Z for expired.test/") == true,
                    "\(bogus.stdout)")
            let bogusQueries = try #require(bogusReport["queries"] as? [[String: Any]])
            #expect(bogusQueries.first?["security"] as? String == "bogus")

            // lookup combines two queries: the result carries the weakest status.
            let lookup = try self.json(try await self.run(["dns", "lookup", "www.example.test", "--json", "--config", "vrules.toml"], in: directory))
            #expect((lookup["result"] as? [String: Any])?["security"] as? String == "secure", "\(lookup)")
        }
    }

    @Test("dns query: the status word on every answer line; --trace prints the chain of trust")
    func textAndTrace() async throws {
        try await self.withSignedServer { directory in
            let text = try await self.run(["dns", "query", "www.expired.test", "A", "--config", "vrules.toml"], in: directory)
            #expect(text.status == 1)
            #expect(text.stdout.contains("www.expired.test/A  error bogus  bogus (RRSIG expired 2026-11-20T00:00:00Z for expired.test/"),
                    "\(text.stdout)")
            let secure = try await self.run(["dns", "query", "www.example.test", "A", "--config", "vrules.toml"], in: directory)
            #expect(secure.stdout.contains("www.example.test/A  ok  secure  from"), "\(secure.stdout)")

            let traced = try await self.run(["dns", "query", "www.example.test", "A", "--trace", "--config", "vrules.toml"], in: directory)
            #expect(traced.status == 0, "\(traced.stdout)\(traced.stderr)")
            let steps = traced.stdout.split(separator: "\n").filter { $0.hasPrefix(";; trace: ") }
            let joined = steps.joined(separator: "\n")
            #expect(joined.contains(";; trace: .: trust anchor with 1 DS and 0 DNSKEY"), "\(traced.stdout)")
            #expect(joined.contains(";; trace: example.test: DS "), "\(traced.stdout)")
            #expect(joined.contains("/ED25519"), "\(traced.stdout)")
            #expect(joined.contains("RRSIG www.example.test/A by example.test key"), "\(traced.stdout)")
            #expect(joined.contains(": verified"), "\(traced.stdout)")
            #expect(steps.last == ";; trace: result: secure", "\(traced.stdout)")

            let nxdomain = try await self.run(["dns", "query", "nothing.example.test", "A", "--trace", "--config", "vrules.toml"], in: directory)
            #expect(nxdomain.stdout.contains("NXDOMAIN proven: NSEC"), "\(nxdomain.stdout)")
        }
    }

    @Test("a bad trust_anchor_file is a configuration error with its path and line, from dns and from check")
    func badAnchorFile() async throws {
        let directory = try CLI.scratch([
            "vrules.toml": Self.configuration(server: "127.0.0.1:53", anchorFile: "broken.anchor"),
            "missing.toml": Self.configuration(server: "127.0.0.1:53", anchorFile: "nowhere.anchor"),
            "empty.toml": Self.configuration(server: "127.0.0.1:53", anchorFile: "empty.anchor"),
            "broken.anchor": ". 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n. IN DNSKEY 257 3 8 not*base64\n",
            "empty.anchor": "; nothing here\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        // The path as the file names it, relative to the configuration's folder.
        let broken = "broken.anchor"
        let dns = try await self.run(["dns", "query", "example.com", "--config", "vrules.toml"], in: directory)
        #expect(dns.status == 2, "\(dns.stdout)\(dns.stderr)")
        #expect(dns.stderr.contains("server.dns.options.trust_anchor_file: trust anchor file \(broken):2: DNSKEY public key is not base64"),
                "\(dns.stderr)")
        let check = try await self.run(["check", "vrules.toml"], in: directory)
        #expect(check.status == 1)
        #expect(check.stdout.contains("vrules.toml:9:1: error: server.dns.options.trust_anchor_file: trust anchor file \(broken):2:"),
                "\(check.stdout)")

        let missing = try await self.run(["check", "missing.toml"], in: directory)
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("nowhere.anchor: cannot read: No such file or directory"), "\(missing.stdout)")
        #expect(missing.stdout.contains("[unreadable-file]"), "\(missing.stdout)")
        let empty = try await self.run(["check", "empty.toml"], in: directory)
        #expect(empty.stdout.contains("empty.anchor: no DS or DNSKEY record in it"), "\(empty.stdout)")
    }
}
