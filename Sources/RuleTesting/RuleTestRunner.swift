import DNS
import Foundation
import Policy
import Rules

/// The outcome of one test.
public struct RuleTestResult: Sendable {
    public var file: String
    public var name: String
    /// Empty when the test passed.
    public var failures: [String]
    public var seconds: Double
    /// The rules file the test ran, and its entries; nil when the rules did not load.
    public var rulesPath: String?
    public var entries: [RuleDefinition]?
    /// Each entry run in the session, with its decision's verdict (`next`, `reject`, ..., `error`).
    public var entryRuns: [(stage: Stage, name: String, decision: String)] = []
    public var passed: Bool { self.failures.isEmpty }
    public var fullName: String { "\(self.file): \(self.name)" }
}

/// Runs test cases, each on a fresh engine and a fresh zone resolver, so that no state
/// leaks from one test to the next and a hostile rule under test only fails its own test.
public struct RuleTestRunner {
    public var limits: RuleLimits
    /// What the `[dnsbl]` table of the configuration says, as `vrules serve` applies it.
    public var dnsblPolicies: DNSBLPolicies?
    /// The configured network resolvers, for tests with `dns = "network"`.
    public var networkResolvers: (@Sendable () throws -> any DNSResolverSelecting)?
    /// `[policy] max_recipients`: recipients past it are answered 452 4.5.3, as `vrules serve` does.
    public var maximumRecipients: Int
    /// Whether an accepted recipient's answer can carry a header (`vrules serve --accept-action
    /// DUNNO`, the default) or not (`OK`).
    public var acceptCarriesHeaders = true
    /// `[policy] unknown_state_action`: what a test of requests gets for a `protocol_state`
    /// vrules does not know, as from `vrules serve`.
    public var unknownStateAction = PolicyService.Configuration.defaultUnknownStateAction
    /// `[server.dns.options]` `ip_strategy` and `preserve_intermediates`: the fixtures answer as
    /// the configured resolver will (`rotate` stays off, so a test's answers are the same every run).
    public var zoneOptions = ZoneResolver.Options()

    public init(limits: RuleLimits = RuleLimits(stageTimeout: 10), dnsblPolicies: DNSBLPolicies? = nil,
                networkResolvers: (@Sendable () throws -> any DNSResolverSelecting)? = nil,
                maximumRecipients: Int = RecipientLimit.defaultMaximum) {
        self.limits = limits
        self.dnsblPolicies = dnsblPolicies
        self.networkResolvers = networkResolvers
        self.maximumRecipients = maximumRecipients
    }

    public func run(_ file: RuleTestFile, filter: String? = nil) async -> [RuleTestResult] {
        var results: [RuleTestResult] = []
        for testCase in file.cases {
            let fullName = "\(file.path): \(testCase.name)"
            if let filter, !fullName.localizedCaseInsensitiveContains(filter) { continue }
            results.append(await self.run(testCase, file: file))
        }
        return results
    }

    public func run(_ testCase: RuleTestCase, file: RuleTestFile) async -> RuleTestResult {
        let started = Date()
        var result = RuleTestResult(file: file.path, name: testCase.name, failures: [], seconds: 0)
        defer { result.seconds = Date().timeIntervalSince(started) }
        let resolvers: any DNSResolverSelecting
        if testCase.usesNetwork {
            do {
                guard let networkResolvers = self.networkResolvers else { throw RuleTestFileError(path: file.path, message: "no network resolver") }
                resolvers = try networkResolvers()
            } catch {
                result.failures = ["dns = \"network\": the configured resolver is not usable: \(error)"]
                return result
            }
        } else {
            let resolver = ZoneResolver(records: testCase.records, security: testCase.security, options: self.zoneOptions)
            for (name, fault) in testCase.faults { resolver.setFault(fault, for: name) }
            resolver.delay = testCase.delay
            resolvers = SingleResolver(resolver)
        }
        let logs = LogCollector()
        let engine: RuleEngine
        do {
            engine = try RuleEngine(scriptPath: file.rulesPath, resolvers: resolvers, limits: self.limits,
                                    logHandler: { logs.append($0) })
        } catch {
            result.failures = ["rules did not load: \(error)"]
            result.seconds = Date().timeIntervalSince(started)
            return result
        }
        if let dnsblPolicies = self.dnsblPolicies { await engine.useDNSBLPolicies(dnsblPolicies) }
        result.rulesPath = file.rulesPath
        result.entries = engine.ruleDefinitions
        guard testCase.requests.isEmpty else {
            let evaluated = await self.answer(testCase, engine: engine, failures: &result.failures)
            result.failures += Self.compareLogs(testCase.logs, logs.lines)
            result.entryRuns = Self.entryRuns(evaluated)
            result.seconds = Date().timeIntervalSince(started)
            return result
        }
        var session = testCase.session
        session.maximumRecipients = self.maximumRecipients
        let report = await engine.simulate(session, captureVars: true)
        result.failures = Self.compare(testCase, report: report, logs: logs.lines, acceptCarriesHeaders: self.acceptCarriesHeaders)
        result.entryRuns = Self.entryRuns(report.steps.map(\.result))
        result.seconds = Date().timeIntervalSince(started)
        return result
    }

    /// Each entry a stage ran, and how it decided (for `--require-coverage`).
    static func entryRuns(_ results: [StageResult]) -> [(stage: Stage, name: String, decision: String)] {
        var runs: [(stage: Stage, name: String, decision: String)] = []
        for result in results {
            for case .rule(let name, _, let decision) in result.trace {
                runs.append((result.stage, name, String(decision.prefix { $0 != " " })))
            }
        }
        return runs
    }

    /// A test of `requests`: each answered in order by one policy service, as `vrules serve`
    /// answers one connection's requests; a failure for each answer that is not the one
    /// expected. Returns the stages the rules evaluated.
    private func answer(_ testCase: RuleTestCase, engine: RuleEngine, failures: inout [String]) async -> [StageResult] {
        // As `vrules serve` configures its service from the same settings.
        let replay = PolicyReplay(engine: engine, configuration: PolicyService.Configuration(
            acceptAction: self.acceptCarriesHeaders ? "DUNNO" : "OK",
            transactionMemory: RecipientLimit.transactionMemory(stateMemory: self.limits.memoryBytes),
            maximumRecipients: self.maximumRecipients, unknownStateAction: self.unknownStateAction, dryRun: testCase.session.dryRun))
        var evaluated: [StageResult] = []
        for (index, expected) in testCase.requests.enumerated() {
            let label = "request \(index + 1) (\(expected.attributes["protocol_state"] ?? "no protocol_state"))"
            let answer: PolicyReplay.Answer
            do {
                answer = try await replay.answer(PolicyRequest(attributes: expected.attributes))
            } catch {
                failures.append("\(label) \(error)")
                break
            }
            evaluated += answer.evaluated
            failures += Self.compareVars(expected.vars ?? [:], answer.vars ?? [:], label: "\(label): ")
            guard answer.action != expected.answer else { continue }
            var text = "\(label): expected answer \"\(expected.answer)\", got \"\(answer.action)\""
            if let result = answer.decision.result {
                text += " (\(result.stage.rawValue): \(result.verdict.kind.rawValue)"
                if let rule = result.decidedBy { text += ", rule \"\(rule)\"" }
                if let failure = result.failure { text += " [\(failure)]" }
                text += answer.decision.reused ? ", the result of the same question asked before)" : ")"
            }
            failures.append(text)
        }
        return evaluated
    }

    static func compare(_ testCase: RuleTestCase, report: SessionReport, logs: [String], acceptCarriesHeaders: Bool = true) -> [String] {
        var failures: [String] = []
        for (stage, expectations) in testCase.expectations {
            let results = report.steps.filter { $0.result.stage == stage }.map(\.result)
            for (index, expectation) in expectations.enumerated() {
                let actual: StageResult?
                if stage == .rcpt && expectations.count > 1 {
                    actual = index < results.count ? results[index] : nil
                } else if expectations.count == 1 && stage == .rcpt && results.count > 1 {
                    // One expectation for several recipients applies to each of them.
                    for (position, each) in results.enumerated() where !expectation.matches(each) {
                        failures.append(Self.describe(stage, expected: expectation, actual: each, position: position + 1))
                    }
                    continue
                } else {
                    actual = results.first
                }
                if !expectation.matches(actual) {
                    failures.append(Self.describe(stage, expected: expectation, actual: actual,
                                                  position: stage == .rcpt && expectations.count > 1 ? index + 1 : nil))
                }
            }
        }
        failures += Self.compareSecurity(testCase.dnssec, report: report)
        failures += Self.compareVars(testCase.vars, report.vars)
        let delivery = report.headerDelivery(acceptCarriesHeaders: acceptCarriesHeaders)
        let headers = delivery.onMessage.map(\.description)
        for expected in testCase.headers where !headers.contains(where: { $0.contains(expected) }) {
            if let (header, reason) = delivery.notOnMessage.first(where: { $0.header.description.contains(expected) }) {
                failures.append("no header on the message contains \"\(expected)\": \"\(header)\" is not on it (\(reason))")
                continue
            }
            failures.append("no header contains \"\(expected)\"" + (headers.isEmpty ? " (no headers)" : " (headers: \(headers.joined(separator: " | ")))"))
        }
        failures += Self.compareLogs(testCase.logs, logs)
        return failures
    }

    /// Each expected text must be in a line the rules logged.
    /// A failure for each value of `ctx.vars` expected and not held.
    static func compareVars(_ expected: [String: String], _ vars: [String: String], label: String = "") -> [String] {
        expected.sorted(by: { $0.key < $1.key }).compactMap { key, value in
            vars[key] == value ? nil : "\(label)ctx.vars.\(key): expected \(value), got \(vars[key] ?? "nil")"
        }
    }

    static func compareLogs(_ expected: [String], _ logs: [String]) -> [String] {
        expected.filter { text in !logs.contains(where: { $0.contains(text) }) }.map { text in
            "no log line contains \"\(text)\"" + (logs.isEmpty ? " (no log lines)" : " (log: \(logs.joined(separator: " | ")))")
        }
    }

    /// Each expected question must have been asked, and have had the expected status every time.
    static func compareSecurity(_ expected: [(question: String, status: DNSSecurityStatus)], report: SessionReport) -> [String] {
        guard !expected.isEmpty else { return [] }
        var asked: [String: [DNSSecurityStatus]] = [:]
        for step in report.steps {
            for event in step.result.trace {
                guard case .dnsQuery(let question, _, _, _, let security) = event else { continue }
                asked[question, default: []].append(security?.status ?? .insecure)
            }
        }
        var failures: [String] = []
        for (question, status) in expected {
            guard let statuses = asked[question] else {
                let list = asked.keys.sorted().joined(separator: ", ")
                failures.append("dnssec: \(question) was never asked" + (list.isEmpty ? " (no DNS query)" : " (asked: \(list))"))
                continue
            }
            if let other = statuses.first(where: { $0 != status }) {
                failures.append("dnssec: \(question): expected \(status.rawValue), got \(other.rawValue)")
            }
        }
        return failures
    }

    static func describe(_ stage: Stage, expected: StageExpectation, actual: StageResult?, position: Int?) -> String {
        let label = position.map { "\(stage.rawValue) #\($0)" } ?? stage.rawValue
        guard let actual else { return "\(label): expected \(expected), but the stage did not run" }
        var text = "\(label): expected \(expected), got \(actual.verdict.kind.rawValue) \(actual.reply)"
        if let sent = PolicyReplyText.changedLine(for: actual.reply) {
            text += ", which vrules serve sends as \"\(sent)\" (\(PolicyReplyText.changeReason))"
        }
        if let rule = actual.decidedBy { text += " (rule \"\(rule)\")" }
        if let failure = actual.failure { text += " [\(failure)]" }
        let queries = actual.trace.compactMap { event -> String? in
            if case .dnsQuery(let question, let outcome, _, _, let security) = event {
                return "\(question) \(outcome)" + TraceText.security(security, outcome: outcome)
            }
            return nil
        }
        if !queries.isEmpty { text += "; dns: " + queries.joined(separator: ", ") }
        return text
    }
}

/// Collects the log lines of one test (the engine may log from any of its callbacks).
final class LogCollector: @unchecked Sendable {
    // @unchecked: `storage` is only touched with `lock` held.
    private let lock = NSLock()
    private var storage: [String] = []

    func append(_ record: RuleLogRecord) {
        let line = "\(record.level) \(record.stage?.rawValue ?? "load") \(record.rule.map { "[\($0)] " } ?? "")\(record.message)"
        self.lock.lock()
        self.storage.append(line)
        self.lock.unlock()
    }

    var lines: [String] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.storage
    }
}
