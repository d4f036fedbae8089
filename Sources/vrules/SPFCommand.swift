import ArgumentParser
import DNS
import DNSResolver

/// `vrules dns spf IP MAIL_FROM [--helo NAME]`: the result `spf.check(ctx)` gives a session
/// from that client with that sender, through the configured resolvers, with every query
/// the check made. An operator asks it when a sender is refused and wants to see why.
struct SPFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spf",
        abstract: "The SPF result of a client and sender, RFC 7208 (spf.check).",
        discussion: """
            Checks the MAIL FROM identity, or for the null reverse-path ("" or "<>") the \
            HELO identity (postmaster@HELO), as spf.check(ctx) does. Exits with 1 on \
            temperror.
            """)
    @OptionGroup var options: DNSCommand.Options
    @Argument(help: "The client's IP address.") var ip: String
    @Argument(help: "The MAIL FROM address (\"\" or \"<>\" for the null reverse-path), or a domain.") var mailFrom: String
    @Option(help: "The HELO name (the identity checked for the null reverse-path; %{h} in macros).") var helo: String?

    func run() async throws {
        let ip = try DNSCommand.address(self.ip)
        var mailFrom = self.mailFrom
        if mailFrom.hasPrefix("<") && mailFrom.hasSuffix(">") && mailFrom.count >= 2 {
            mailFrom = String(mailFrom.dropFirst().dropLast())
        }
        let helo = self.helo
        guard !mailFrom.isEmpty || !(helo ?? "").isEmpty else {
            throw UsageFailure.exit("the null reverse-path has no domain to check: give the HELO name with --helo")
        }
        let identity = SPFCheck.identity(mailFrom: mailFrom, helo: helo)
        let identityName = mailFrom.isEmpty ? "helo" : "mailfrom"
        // U-labels become A-labels; a name that is not valid is left to check_host, which
        // answers `none` for a malformed domain (RFC 7208 §4.3), as spf.check does.
        let domain = (try? DNSName.normalize(identity.domain)) ?? identity.domain
        let subject = "\(ip) <\(identity.sender)>"
        try await DNSCommand.execute("spf", subject: subject, options: self.options, routed: true) { resolver in
            let result = await resolver.run(SPFCheck(ip: ip, domain: domain, sender: identity.sender, helo: helo))
            var lines = ["domain: \(result.domain) (\(identityName))"]
            var fields: [String: Any] = ["result": result.result.rawValue, "domain": result.domain, "identity": identityName]
            if let mechanism = result.mechanism {
                lines.append("mechanism: \(mechanism)")
                fields["mechanism"] = mechanism
            }
            if let explanation = result.explanation {
                lines.append("explanation: \(explanation)")
                fields["explanation"] = explanation
            }
            if let reason = result.reason {
                lines.append("reason: \(reason)")
                fields["reason"] = reason
            }
            return DNSCommand.Report(summary: result.result.rawValue, lines: lines, fields: fields,
                                     failed: result.result == .temperror)
        }
    }
}
