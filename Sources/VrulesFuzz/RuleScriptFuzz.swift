import DNS
import Foundation
import Logging
import Policy
import Rules

/// The `rule-script` target: a hostile or careless rule script, run as `vrules run` and
/// `vrules serve` run one, under limits tight enough that each input ends in milliseconds.
enum RuleScriptFuzz {
    /// Small enough that a loop, a huge string or a deep recursion ends well inside libFuzzer's
    /// timeout; the run-time bounds stay the backstop for work the count cannot see.
    static let limits = RuleLimits(instructionsPerStage: 200_000, memoryBytes: 16 << 20, stageTimeout: 2,
                                   runSecondsPerStage: 0.25, loadInstructions: 500_000, loadTimeout: 0.5,
                                   logLinesPerStage: 10, dnsCallsPerStage: 20)

    /// The example zone, read once from the repository (the current directory, as
    /// scripts/fuzz.sh and the corpus replay run the target).
    private static let records: [DNSRecord] = {
        do {
            return try ZoneFile.load(path: "examples/example.zone")
        } catch {
            fatalError("rule-script needs examples/example.zone in the current directory: \(error)")
        }
    }()

    private static let quiet: Logger = {
        var logger = Logger(label: "vrules.fuzz")
        logger.logLevel = .critical
        return logger
    }()

    static func run(_ input: [UInt8]) {
        let split = input.firstIndex(of: 0)
        let topLevel = String(decoding: input[..<(split ?? 0)], as: UTF8.self)
        let body = String(decoding: input[(split.map { $0 + 1 } ?? 0)...], as: UTF8.self)
        let stages = Stage.allCases.map { "\($0.rawValue) = { rule(\"fuzzed\", body) }" }.joined(separator: ", ")
        let source = "\(topLevel)\nlocal function body(ctx)\n\(body)\nend\nreturn { \(stages) }\n"
        let engine: RuleEngine
        do {
            engine = try RuleEngine(source: source, path: "fuzz.lua", resolvers: SingleResolver(ZoneResolver(records: Self.records)),
                                    limits: Self.limits, tracing: false)
        } catch {
            guard !error.message.isEmpty else { fatalError("a script refused without a reason") }
            return
        }
        let session = SimulatedSession(
            base: SessionInfo(clientIP: "192.0.2.10", clientPort: 40000, clientName: "mail.good.example", serverName: "mx.vrules.test",
                              helo: "mail.good.example", mailFrom: MailAddress("alice@good.example")),
            recipients: [MailAddress("bob@implicit.example"), MailAddress("carol@implicit.example")])
        for dryRun in [false, true] {
            var session = session
            session.dryRun = dryRun
            let played = session
            let report = FuzzTarget.wait { await engine.simulate(played) }
            for step in report.steps { Self.check(step.result) }
            _ = report.headerDelivery
        }
        let service = PolicyService(engines: [engine], configuration: PolicyService.Configuration(maximumTransactions: 100),
                                    logger: Self.quiet)
        for request in Self.requests {
            FuzzTarget.checkLine(FuzzTarget.wait { await service.decide(request).action })
        }
    }

    /// One transaction as Postfix asks it of a policy service named in every restriction list.
    private static let requests: [PolicyRequest] = {
        let common = ["request": "smtpd_access_policy", "client_address": "192.0.2.10", "client_name": "mail.good.example",
                      "helo_name": "mail.good.example", "instance": "fuzz.1"]
        let states: [(String, [String: String])] = [
            ("CONNECT", [:]), ("EHLO", [:]), ("MAIL", ["sender": "alice@good.example"]),
            ("RCPT", ["sender": "alice@good.example", "recipient": "bob@implicit.example"]),
            ("RCPT", ["sender": "alice@good.example", "recipient": "carol@implicit.example"]),
            ("DATA", ["sender": "alice@good.example", "recipient_count": "2"]),
            ("END-OF-MESSAGE", ["sender": "alice@good.example", "recipient_count": "2"]),
        ]
        return states.map { state, extra in
            PolicyRequest(attributes: common.merging(extra) { $1 }.merging(["protocol_state": state]) { $1 })
        }
    }()

    /// A stage's end: a verdict whose reply is one an MTA can send for it.
    private static func check(_ result: StageResult) {
        let reply = result.reply
        let codeClass = reply.code / 100
        let fits: Bool
        switch result.verdict.kind {
        case .accept, .next: fits = codeClass == 2 || codeClass == 3
        case .defer_: fits = codeClass == 4
        case .reject: fits = codeClass == 5
        }
        guard fits else { fatalError("\(result.stage): a \(result.verdict.kind) verdict with the reply \(reply)") }
        guard let enhancedClass = ReplyValidation.enhancedClass(reply.enhanced),
              enhancedClass == codeClass || (codeClass == 3 && enhancedClass == 2) else {
            fatalError("\(result.stage): the reply \(reply) has no enhanced code of its class")
        }
        guard !reply.text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
            fatalError("\(result.stage): a reply text with CR, LF or NUL: \(Array(reply.text.utf8))")
        }
        if result.failure != nil, result.verdict.kind != .defer_ {
            fatalError("\(result.stage): a failure (\(result.failure!)) ended in \(result.verdict.kind)")
        }
        for header in result.headers {
            guard !header.name.isEmpty, header.name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x3a }),
                  !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                fatalError("\(result.stage): a header that is not one field: \(header)")
            }
        }
    }
}
