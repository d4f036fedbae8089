import ArgumentParser
import Foundation
import NIOCore
import OneLineText
import OperatorFiles
import Policy
import Rules

/// `vrules answer`: Postfix policy requests read from a file, answered as `vrules serve`
/// answers them, with the same rules and `[policy]` settings, and no server: what a request
/// stream Postfix sent (or one written by hand) gets, offline with `--zone`.
struct AnswerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "answer",
        abstract: "Answer Postfix policy requests read from a file as vrules serve would, and print each answer.",
        discussion: """
            The requests are Postfix's policy protocol (SMTPD_POLICY_README): name=value lines, an \
            empty line after each request (after the last one it may be left out). They are \
            answered in order by one policy service, as one connection's requests are: requests \
            with the same instance attribute are one transaction, a question Postfix asks again \
            (from a second restriction list) gets the answer of the first, and a stage's headers \
            go out as PREPEND answers. A request vrules serve cannot answer (a malformed line, \
            another request type, no client_address) ends the stream there, as it closes the \
            connection, and the exit status is 1.
            """
    )

    @OptionGroup var resolverOptions: ResolverOptions

    @Option(help: "The rule script.")
    var rules: String = "rules/main.lua"

    @OptionGroup var accept: AcceptActionOption

    @Flag(name: .customLong("dry-run"),
          help: "Answer as `vrules serve --dry-run` ([policy] dry_run = true sets it too): refusals answered DUNNO.")
    var dryRun = false

    @Flag(help: "Print the answers as JSON.")
    var json = false

    @Argument(help: ArgumentHelp("The requests ('-': standard input).", valueName: "file"))
    var requests: String = "-"

    /// The most a request file may hold, as any other file a command reads.
    static let sizeLimit = 16 << 20

    func run() async throws {
        let configuration: ConfigurationFile
        let engine: RuleEngine
        do {
            configuration = try self.resolverOptions.loadConfigurationFile()
            let resolvers = try self.resolverOptions.makeResolvers(using: configuration)
            engine = try RuleEngine(scriptPath: self.rules, resolvers: resolvers, limits: configuration.limits)
        } catch let error as RuleLoadError {
            throw UsageFailure.exit("cannot load rules: \(error)")
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        await engine.useDNSBLPolicies(configuration.configuration.dnsbl)
        let stream = try self.readRequests()
        let replay = PolicyReplay(engine: engine, configuration: configuration.policyService(
            acceptAction: self.accept.acceptAction, dryRun: self.dryRun || configuration.dryRun))
        var answers: [AnsweredRequest] = []
        var refusal: String? = nil
        requests: for item in Self.decode(stream) {
            switch item {
            case .request(let request):
                do {
                    answers.append(AnsweredRequest(request: request, answer: try await replay.answer(request)))
                } catch {
                    refusal = "request \(answers.count + 1) \(error)"
                    break requests
                }
            case .error(let error):
                refusal = "request \(answers.count + 1) cannot be read (\(error)): vrules serve closes the connection there"
            }
        }
        if self.json {
            print(AnswerReport.json(answers, refusal: refusal))
        } else {
            print(AnswerReport.text(answers, refusal: refusal), terminator: "")
        }
        if refusal != nil { throw ExitCode(1) }
    }

    private func readRequests() throws -> [UInt8] {
        if self.requests == "-" {
            let data = FileHandle.standardInput.readData(ofLength: Self.sizeLimit + 1)
            guard data.count <= Self.sizeLimit else {
                throw UsageFailure.exit("standard input: more than \(Self.sizeLimit >> 20) MiB of requests")
            }
            return Array(data)
        }
        do {
            return try InputFile.bytes(atPath: self.requests, limit: Self.sizeLimit)
        } catch {
            throw UsageFailure.exit("\(self.requests): cannot read requests: \(error)")
        }
    }

    enum Decoded {
        case request(PolicyRequest)
        /// Why the rest cannot be read.
        case error(String)
    }

    /// The stream's requests in order, and the error that ends it if one does. A last request
    /// whose empty line is missing is taken as if it were there: a file's end is not a
    /// connection cut off mid-request.
    static func decode(_ bytes: [UInt8]) -> [Decoded] {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\n"), bytes.dropLast().last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        var decoder = PolicyRequestDecoder()
        var buffer = ByteBufferAllocator().buffer(bytes: bytes)
        var decoded: [Decoded] = []
        do {
            while let request = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
                decoded.append(.request(request))
            }
        } catch {
            decoded.append(.error("\(error)"))
        }
        return decoded
    }
}

/// One request of `vrules answer` and what it got.
struct AnsweredRequest {
    var request: PolicyRequest
    var answer: PolicyReplay.Answer
}

/// How `vrules answer` prints: per request what it asked, every stage the rules evaluated for
/// it (its rules, DNS calls and queries, headers and verdict, as `vrules run` prints a stage)
/// and the answer line, as `action=...` goes back to Postfix.
enum AnswerReport {
    static func text(_ answers: [AnsweredRequest], refusal: String?) -> String {
        var out = ""
        func line(_ text: String) { out += OneLine.escaped(text) + "\n" }
        for (index, answered) in answers.enumerated() {
            line("== request \(index + 1): \(Self.summary(of: answered.request))")
            let decision = answered.answer.decision
            for result in answered.answer.evaluated {
                for event in result.trace { line("  " + ReportFormatter.describe(event)) }
                if let failure = result.failure { line("  failure: \(failure)") }
                for header in result.headers { line("  header \(header)") }
                line("\(result.stage.rawValue): \(result.verdict.kind.rawValue) \(result.reply)")
            }
            if let result = decision.result, decision.reused {
                line("\(result.stage.rawValue): \(result.verdict.kind.rawValue) \(result.reply) (the result of the same question asked before)")
            }
            if let note = Self.noRuleNote(answered) { line("  \(note)") }
            line("action=\(answered.answer.action)")
        }
        if let refusal { line(refusal) }
        if answers.isEmpty && refusal == nil { line("no requests") }
        return out
    }

    static func json(_ answers: [AnsweredRequest], refusal: String?) -> String {
        let objects = answers.enumerated().map { index, answered -> [String: Any] in
            let decision = answered.answer.decision
            var object: [String: Any] = ["request": index + 1, "action": answered.answer.action, "reused": decision.reused]
            for name in ["protocol_state", "instance", "client_address", "helo_name", "sender", "recipient"] {
                if let value = answered.request[name] { object[name] = value }
            }
            if let result = decision.result {
                object["stage"] = result.stage.rawValue
                object["verdict"] = result.verdict.kind.rawValue
                object["reply"] = ["code": result.reply.code, "enhanced": result.reply.enhanced, "text": result.reply.text]
                if let rule = result.decidedBy { object["decided_by"] = rule }
                if let failure = result.failure { object["failure"] = failure }
            }
            object["stages"] = answered.answer.evaluated.map { result -> [String: Any] in
                var stage: [String: Any] = [
                    "stage": result.stage.rawValue, "verdict": result.verdict.kind.rawValue,
                    "reply": ["code": result.reply.code, "enhanced": result.reply.enhanced, "text": result.reply.text],
                    "trace": result.trace.map(ReportFormatter.jsonEvent),
                ]
                if let rule = result.decidedBy { stage["decided_by"] = rule }
                if let failure = result.failure { stage["failure"] = failure }
                if !result.headers.isEmpty { stage["headers"] = result.headers.map { ["name": $0.name, "value": $0.value] } }
                return stage
            }
            return object
        }
        var root: [String: Any] = ["answers": objects]
        if let refusal { root["error"] = refusal }
        let data = try! JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Why a refusal came with no stage run: the answers `vrules serve` gives without rules.
    static func noRuleNote(_ answered: AnsweredRequest) -> String? {
        let decision = answered.answer.decision
        guard decision.result == nil, answered.answer.evaluated.isEmpty, decision.action != "DUNNO" else { return nil }
        if case .unknown(let state) = ProtocolState(answered.request["protocol_state"] ?? "") {
            return "protocol_state \(state.isEmpty ? "(none)" : state) is not one vrules knows: the answer is [policy] unknown_state_action"
        }
        if decision.action.hasPrefix("\(RecipientLimit.reply.code) \(RecipientLimit.reply.enhanced)") {
            return "a recipient past what a transaction may hold ([policy] max_recipients, or its share of memory): answered without rules"
        }
        return nil
    }

    /// What a request asks, from the attributes that say it.
    static func summary(of request: PolicyRequest) -> String {
        var parts = [request["protocol_state"] ?? "(no protocol_state)"]
        if let instance = request["instance"] { parts.append("instance \(instance)") }
        if let client = request["client_address"] { parts.append("client \(client)") }
        if let helo = request["helo_name"], !helo.isEmpty { parts.append("helo \(helo)") }
        if let sender = request["sender"] { parts.append("sender <\(sender)>") }
        if let recipient = request["recipient"], !recipient.isEmpty { parts.append("recipient <\(recipient)>") }
        return parts.joined(separator: ", ")
    }
}
