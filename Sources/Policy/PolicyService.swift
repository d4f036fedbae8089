import DNS
import Foundation
import Logging
import Metrics
import Rules

/// Turns policy requests into stage evaluations. Holds the transactions Postfix's
/// `instance` ties together, so that `ctx.vars` lives across a message's requests, a
/// stage runs once however many restriction lists ask, and, with Postfix's default
/// `smtpd_delay_reject = yes`, the stages before RCPT still run, in order, first.
public actor PolicyService {
    public struct Configuration: Sendable {
        /// What `accept()` answers: `DUNNO` (the default: Postfix's own restrictions still
        /// apply) or `OK` (the rules' accept is final for that restriction list).
        public var acceptAction: String
        /// A transaction not asked about for this long is forgotten.
        public var transactionTimeout: Double
        /// At most this many transactions are kept; the least recently used go first.
        public var maximumTransactions: Int

        /// Held transactions cost about 2 KiB of the Lua state's memory each (their `ctx`),
        /// so the bound stays well inside the default 64 MiB cap.
        public init(acceptAction: String = "DUNNO", transactionTimeout: Double = 300, maximumTransactions: Int = 20_000) {
            self.acceptAction = acceptAction
            self.transactionTimeout = transactionTimeout
            self.maximumTransactions = maximumTransactions
        }
    }

    /// What is known of one message transaction.
    final class Transaction {
        let engine: RuleEngine
        let ruleTransaction: RuleTransaction
        var results: [StageKey: StageState] = [:]
        var recipients: [MailAddress] = []
        var lastUsed: Double
        /// The client address and port of the SMTP connection it came on.
        var connection: String?

        init(engine: RuleEngine, ruleTransaction: RuleTransaction, now: Double) {
            self.engine = engine
            self.ruleTransaction = ruleTransaction
            self.lastUsed = now
        }
    }

    /// A stage's verdict is reused only for the same question: the same HELO name,
    /// sender or recipient.
    /// A stage being evaluated (identical requests arriving meanwhile wait for its result),
    /// then its result.
    enum StageState {
        case running(waiters: [CheckedContinuation<StageResult, Never>])
        case done(StageResult)
    }

    struct StageKey: Hashable {
        var stage: Stage
        var subject: String?
    }

    static func subject(of stage: Stage, in session: SessionInfo) -> String? {
        switch stage {
        case .helo: return session.helo
        case .mail: return session.mailFrom?.address
        case .rcpt: return session.rcpts.last?.address
        default: return nil
        }
    }

    private var engine: RuleEngine
    private let configuration: Configuration
    private let logger: Logger
    private var transactions: [String: Transaction] = [:]
    /// The transaction (by key) currently open on each SMTP connection (client address/port).
    private var instanceOfConnection: [String: String] = [:]
    private var requestsSinceSweep = 0
    // Metric handles made once: making one goes through the registry's lock and a label lookup.
    private var requestCounters: [String: Counter] = [:]
    private var verdictCounters: [String: Counter] = [:]
    private var durationTimers: [String: Timer] = [:]

    private func requestCounter(_ stage: String) -> Counter {
        if let counter = self.requestCounters[stage] { return counter }
        let counter = Counter(label: "vrules_policy_requests_total", dimensions: [("stage", stage)])
        self.requestCounters[stage] = counter
        return counter
    }

    private func durationTimer(_ stage: String) -> Timer {
        if let timer = self.durationTimers[stage] { return timer }
        let timer = Timer(label: "vrules_policy_request_duration_seconds", dimensions: [("stage", stage)], preferredDisplayUnit: .seconds)
        self.durationTimers[stage] = timer
        return timer
    }

    public init(engine: RuleEngine, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "vrules.policy")) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
    }

    /// New transactions use `engine`; those in progress finish on the one they started with.
    public func replaceEngine(_ engine: RuleEngine) {
        self.engine = engine
    }

    public var currentEngine: RuleEngine { self.engine }
    public var transactionCount: Int { self.transactions.count }

    static func stage(for protocolState: String) -> Stage? {
        switch protocolState.uppercased() {
        case "CONNECT": return .connect
        case "EHLO", "HELO": return .helo
        case "MAIL": return .mail
        case "RCPT": return .rcpt
        case "DATA": return .data
        case "END-OF-MESSAGE": return .preq
        default: return nil
        }
    }

    /// The answer to one request (already checked to be `request=smtpd_access_policy`).
    public func decide(_ request: PolicyRequest) async -> PolicyDecision {
        let started = DispatchTime.now().uptimeNanoseconds
        let state = request["protocol_state"] ?? ""
        guard let stage = Self.stage(for: state) else {
            // VRFY, ETRN and anything unknown: no rule applies.
            self.requestCounter("none").increment()
            return .dunno
        }
        self.requestCounter(stage.rawValue).increment()
        let now = Double(started) / 1e9
        self.sweep(now: now)
        let key = self.transactionKey(request)
        let transaction = await self.transaction(for: key, request: request, now: now)
        transaction.lastUsed = now

        var session = Self.sessionInfo(from: request)
        if stage == .rcpt, let recipient = session.rcpts.first {
            if !transaction.recipients.contains(recipient) { transaction.recipients.append(recipient) }
            session.rcpts = transaction.recipients.filter { $0 != recipient } + [recipient]
        } else {
            session.rcpts = transaction.recipients
        }

        var stages: [Stage] = [.connect]
        if session.helo != nil { stages.append(.helo) }
        if session.mailFrom != nil { stages.append(.mail) }
        stages = stages.filter { $0 < stage } + [stage]

        var decision = PolicyDecision.dunno
        for current in stages {
            let key = StageKey(stage: current, subject: Self.subject(of: current, in: session))
            let reused = transaction.results[key] != nil
            let result: StageResult
            switch transaction.results[key] {
            case .done(let done)?:
                result = done
            case .running?:
                result = await withCheckedContinuation { continuation in
                    if case .running(let waiters)? = transaction.results[key] {
                        transaction.results[key] = .running(waiters: waiters + [continuation])
                    }
                }
            case nil:
                transaction.results[key] = .running(waiters: [])
                result = await transaction.engine.evaluate(current, in: transaction.ruleTransaction, session: session)
                if case .running(let waiters)? = transaction.results[key] {
                    for waiter in waiters { waiter.resume(returning: result) }
                }
                transaction.results[key] = .done(result)
            }
            decision = PolicyDecision(action: PolicyDecision.action(for: result, acceptAction: self.configuration.acceptAction),
                                      stage: current, result: result, reused: reused)
            if !reused { self.record(result, request: request) }
            if result.verdict.kind.isFailure { break }
        }
        if stage == .preq {
            await self.finish(key)
        }
        self.durationTimer(stage.rawValue)
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        return decision
    }

    private func record(_ result: StageResult, request: PolicyRequest) {
        let kind = result.verdict.kind.rawValue
        if let counter = self.verdictCounters[kind] {
            counter.increment()
        } else {
            let counter = Counter(label: "vrules_policy_verdicts_total", dimensions: [("verdict", kind)])
            self.verdictCounters[kind] = counter
            counter.increment()
        }
        // The metadata is built only when the decision line is logged at all.
        guard self.logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "stage": "\(result.stage.rawValue)",
            "client": "\(request["client_address"] ?? "-")",
            "instance": "\(request["instance"] ?? "-")",
            "verdict": "\(result.verdict.kind.rawValue)",
            "reply": "\(result.reply)",
        ]
        if let rule = result.decidedBy { metadata["rule"] = "\(rule)" }
        if let failure = result.failure { metadata["failure"] = "\(failure)" }
        if let recipient = request["recipient"] { metadata["recipient"] = "\(recipient)" }
        self.logger.info("decision", metadata: metadata)
    }

    /// `instance` when Postfix sent one; before RCPT (and with `smtpd_delay_reject = no`)
    /// it may be empty, and the client's address and port stand in for it.
    private func transactionKey(_ request: PolicyRequest) -> String {
        if let instance = request["instance"] { return "i:" + instance }
        return self.clientKey(request)
    }

    private func clientKey(_ request: PolicyRequest) -> String {
        "c:\(request["client_address"] ?? "")/\(request["client_port"] ?? "")"
    }

    private func transaction(for key: String, request: PolicyRequest, now: Double) async -> Transaction {
        if let existing = self.transactions[key] { return existing }
        let clientKey = self.clientKey(request)
        if key != clientKey {
            // A new instance on the same SMTP connection is its next message: the previous
            // one is over even if Postfix never sent END-OF-MESSAGE for it.
            if let previous = self.instanceOfConnection[clientKey], previous != key {
                await self.finish(previous)
            }
            self.instanceOfConnection[clientKey] = key
            // The first request with an instance adopts what was evaluated for the client before it.
            if let adopted = self.transactions.removeValue(forKey: clientKey) {
                self.transactions[key] = adopted
                return adopted
            }
        }
        let engine = self.engine
        let ruleTransaction = await engine.beginTransaction(Self.sessionInfo(from: request))
        let transaction = Transaction(engine: engine, ruleTransaction: ruleTransaction, now: now)
        transaction.connection = clientKey
        self.transactions[key] = transaction
        return transaction
    }

    private func finish(_ key: String) async {
        guard let transaction = self.transactions.removeValue(forKey: key) else { return }
        self.forgetConnection(of: transaction, key: key)
        await transaction.engine.endTransaction(transaction.ruleTransaction)
    }

    private func forgetConnection(of transaction: Transaction, key: String) {
        if let connection = transaction.connection, self.instanceOfConnection[connection] == key {
            self.instanceOfConnection[connection] = nil
        }
    }

    /// Forgets transactions idle past the timeout, and the least recently used beyond the bound.
    private func sweep(now: Double) {
        self.requestsSinceSweep += 1
        let overfull = self.transactions.count > self.configuration.maximumTransactions
        guard overfull || self.requestsSinceSweep >= 1_000 else { return }
        self.requestsSinceSweep = 0
        var expired = self.transactions.filter { now - $0.value.lastUsed > self.configuration.transactionTimeout }.map(\.key)
        if self.transactions.count - expired.count > self.configuration.maximumTransactions {
            let excess = self.transactions.count - expired.count - self.configuration.maximumTransactions
            let keep = Set(expired)
            let oldest = self.transactions.filter { !keep.contains($0.key) }
                .sorted { $0.value.lastUsed < $1.value.lastUsed }
                .prefix(excess + self.configuration.maximumTransactions / 10)
            expired += oldest.map(\.key)
        }
        for key in expired {
            if let transaction = self.transactions.removeValue(forKey: key) {
                self.forgetConnection(of: transaction, key: key)
                let engine = transaction.engine
                let ruleTransaction = transaction.ruleTransaction
                Task { await engine.endTransaction(ruleTransaction) }
            }
        }
        Gauge(label: "vrules_policy_transactions").record(self.transactions.count)
    }

    /// `ctx` from the request's attributes.
    static func sessionInfo(from request: PolicyRequest) -> SessionInfo {
        var info = SessionInfo(clientIP: request["client_address"] ?? "0.0.0.0")
        info.clientPort = request["client_port"].flatMap(Int.init)
        if let name = request["client_name"], name != "unknown" { info.clientName = name }
        info.serverIP = request["server_address"]
        info.serverName = request["server_name"]
        info.helo = request["helo_name"]
        if let state = request["protocol_state"]?.uppercased(), ["MAIL", "RCPT", "DATA", "END-OF-MESSAGE"].contains(state) {
            info.mailFrom = MailAddress(request.attributes["sender"] ?? "")
        }
        if let recipient = request["recipient"] { info.rcpts = [MailAddress(recipient)] }
        if request["sasl_method"] != nil || request["sasl_username"] != nil {
            info.authMechanism = request["sasl_method"]
            info.authUsername = request["sasl_username"]
        }
        if request["encryption_protocol"] != nil || request["encryption_cipher"] != nil {
            info.tls = SessionInfo.TLSInfo(version: request["encryption_protocol"], cipher: request["encryption_cipher"],
                                           sni: request["tls_sni"] ?? request["server_name"])
        }
        return info
    }
}
