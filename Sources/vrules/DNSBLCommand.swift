import ArgumentParser
import DNS
import DNSResolver

/// `vrules dns dnsbl SUBJECT ZONE...`: what `dns.dnsbl` answers for a subject, each zone
/// read by its codes (`[dnsbl."zone"]` or the built-in ones) and checked against its
/// RFC 5782 test points, through the configured resolvers (`[server.dns.zones]` included).
struct DNSBLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnsbl", abstract: "Ask DNS blocklists about an IP or a domain (dns.dnsbl).")
    @OptionGroup var options: DNSCommand.Options
    @Argument(help: "An IP address (reversed octets, IPv6 nibbles) or a domain (RHSBL, DBL).") var subject: String
    @Argument(help: "The blocklist zones, asked at once.") var zones: [String]

    func validate() throws {
        guard !self.zones.isEmpty else { throw ValidationError("name at least one blocklist zone") }
    }

    func run() async throws {
        guard let subject = DNSBLSubject(self.subject) else {
            throw UsageFailure.exit("'\(self.subject)' is neither an IP address nor a domain name")
        }
        let zones = try self.zones.map { zone in
            do {
                return try DNSBLZone.name(zone)
            } catch {
                throw UsageFailure.exit("\(error)")
            }
        }
        let policies = try self.options.loadConfiguration().configuration.dnsbl
        try await DNSCommand.execute("dnsbl", subject: subject.name, options: self.options, routed: true) { resolver in
            let results = await resolver.run(DNSBLCheck(subject: subject, zones: zones, policies: policies, health: DNSBLHealth()))
            let summary = results.map { "\($0.zone) \($0.status.rawValue)" }.joined(separator: ", ")
            let lines = results.map { result in
                var line = "\(result.zone): \(result.status.rawValue)"
                if !result.codes.isEmpty { line += " " + result.codes.joined(separator: ",") }
                if let text = result.text { line += " \"\(text)\"" }
                if let reason = result.reason { line += " (\(reason))" }
                return line
            }
            let fields: [String: Any] = ["zones": results.map { result -> [String: Any] in
                var object: [String: Any] = ["zone": result.zone, "status": result.status.rawValue, "codes": result.codes]
                if let text = result.text { object["text"] = text }
                if let reason = result.reason { object["reason"] = reason }
                return object
            }]
            return DNSCommand.Report(summary: summary, lines: lines, fields: fields,
                                     failed: results.allSatisfy { $0.status == .temperror })
        }
    }
}
