import ArgumentParser
import DNS
import Foundation
import Rules

/// `vrules run`: simulate one SMTP session through the stages, like `exim -bh`.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Simulate one SMTP session: every rule, every DNS query, each stage's verdict."
    )

    @OptionGroup var resolverOptions: ResolverOptions

    @Option(help: "The rule script.")
    var rules: String = "rules/main.lua"

    @Option(name: .customLong("client-ip"), help: "The client's IP address.")
    var clientIP: String = "192.0.2.1"

    @Option(name: .customLong("client-port"), help: "The client's TCP port.")
    var clientPort: Int?

    @Option(name: .customLong("client-name"), help: "The client's name as the MTA resolved it.")
    var clientName: String?

    @Option(name: .customLong("server-port"), help: "The port the client connected to (25, 465, 587...).")
    var serverPort: Int?

    @Option(name: .customLong("server-name"), help: "This server's name.")
    var serverName: String = "mx.vrules.test"

    @Option(help: "The HELO/EHLO name (omit to stop after connect).")
    var helo: String?

    @Option(name: .customLong("mail-from"), help: "The MAIL FROM address (\"\" for the null sender).")
    var mailFrom: String?

    @Option(name: .customLong("rcpt"), help: "A RCPT TO address (repeatable).")
    var rcpts: [String] = []

    @Option(help: "SASL mechanism:username of an authenticated client.")
    var auth: String?

    @Flag(help: "The session uses TLS.")
    var tls = false

    @Flag(name: .customLong("dry-run"),
          help: "Play the session as `vrules serve --dry-run` would ([policy] dry_run = true sets it too): each refusal answered DUNNO, the session going on.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var accept: AcceptActionOption

    func validate() throws {
        guard IPAddress(self.clientIP) != nil else {
            throw ValidationError("--client-ip: '\(self.clientIP)' is not an IP address")
        }
        if let clientPort, !(0...65535).contains(clientPort) {
            throw ValidationError("--client-port: \(clientPort) is not a port (0 to 65535)")
        }
        if let serverPort, !(0...65535).contains(serverPort) {
            throw ValidationError("--server-port: \(serverPort) is not a port (0 to 65535)")
        }
        if let auth, SessionInfo.authentication(auth) == nil {
            throw ValidationError("--auth: expected MECHANISM:USERNAME, both given, e.g. PLAIN:alice; got '\(auth)'")
        }
    }

    func run() async throws {
        let resolvers: any DNSResolverSelecting
        do {
            resolvers = try self.resolverOptions.makeResolvers()
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        let configuration: ConfigurationFile
        do {
            configuration = try self.resolverOptions.loadConfigurationFile()
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        let engine: RuleEngine
        do {
            engine = try RuleEngine(scriptPath: self.rules, resolvers: resolvers, limits: configuration.limits)
        } catch {
            throw UsageFailure.exit("cannot load rules: \(error)")
        }
        await engine.useDNSBLPolicies(configuration.configuration.dnsbl)
        var info = SessionInfo(clientIP: self.clientIP, clientPort: self.clientPort, clientName: self.clientName,
                               serverPort: self.serverPort, serverName: self.serverName, helo: self.helo,
                               mailFrom: self.mailFrom.map(MailAddress.init))
        if let auth, let (mechanism, username) = SessionInfo.authentication(auth) {
            info.authMechanism = mechanism
            info.authUsername = username
        }
        if self.tls { info.tls = SessionInfo.TLSInfo(version: "TLSv1.3") }
        let report = await engine.simulate(SimulatedSession(
            base: info, recipients: self.rcpts.map(MailAddress.init),
            maximumRecipients: configuration.configuration.policy.maximumRecipients ?? RecipientLimit.defaultMaximum,
            dryRun: self.dryRun || configuration.dryRun))
        if self.json {
            print(ReportFormatter.json(report, acceptCarriesHeaders: self.accept.acceptCarriesHeaders))
        } else {
            print(ReportFormatter.text(report, acceptCarriesHeaders: self.accept.acceptCarriesHeaders), terminator: "")
        }
    }
}
