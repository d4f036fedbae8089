/// Plays one SMTP session through the stages the way an MTA would, stopping where the
/// MTA would stop: a failure at connect, helo, authenticate or mail ends the session; a
/// refused recipient is dropped and the others go on; with no recipient left there is no DATA.
public struct SimulatedSession: Sendable {
    public var base: SessionInfo
    public var recipients: [MailAddress]
    /// Recipients one transaction may hold (`[policy] max_recipients`): a recipient past them
    /// is answered as `vrules serve` answers it (`RecipientLimit`), without running rules.
    public var maximumRecipients: Int
    /// Played as `vrules serve` plays a dry run (`[policy] dry_run`): the rules run and decide
    /// as they would enforced, but every refusal is answered `DUNNO`, so the client goes on
    /// and the message comes, carrying the headers those answers hand to Postfix.
    public var dryRun: Bool

    public init(base: SessionInfo, recipients: [MailAddress], maximumRecipients: Int = RecipientLimit.defaultMaximum,
                dryRun: Bool = false) {
        self.base = base
        self.recipients = recipients
        self.maximumRecipients = maximumRecipients
        self.dryRun = dryRun
    }
}

public struct SessionReport: Sendable {
    public struct Step: Sendable {
        public var result: StageResult
        /// The recipient a `rcpt` stage was about.
        public var recipient: MailAddress?
    }

    public var steps: [Step]
    /// Where the session ended early, if it did.
    public var stoppedAt: Stage?
    public var acceptedRecipients: [MailAddress]
    /// `ctx.vars` at the end, when asked for.
    public var vars: [String: String] = [:]
    /// The session was played as a dry run (`SimulatedSession.dryRun`).
    public var dryRun = false
    /// The recipients of the client's transaction (none without a sender): in a dry run,
    /// each is asked about at RCPT whatever the rules decided before.
    public var recipientsGiven = 0

    public var outcome: String {
        if let stage = self.stoppedAt { return "stopped at \(stage.rawValue)" }
        return "completed"
    }

    /// The headers the message carries, and those it cannot, each with why, as `vrules serve`
    /// hands them to Postfix: one `PREPEND` per answer that lets the message go on (a `next`
    /// verdict, or `accept` answered `DUNNO`, the default) at each RCPT and at DATA, where
    /// the README names the policy service; each header in the order the rules added it, on
    /// an answer at or after the stage that added it. None at end of data.
    public var headerDelivery: HeaderDelivery { self.headerDelivery(acceptCarriesHeaders: true) }

    /// As `headerDelivery`, for a policy server whose `accept()` answers `OK` when
    /// `acceptCarriesHeaders` is false: such an answer carries no header.
    ///
    /// In a dry run a refusal is answered `DUNNO`, so it carries a header as `next` does, and
    /// the client goes on past it: after one before the recipients, each recipient's RCPT
    /// and then DATA are still asked (and answered `DUNNO` with no rule run, as `vrules
    /// serve` answers a transaction its rules refused); after every recipient was refused,
    /// DATA is. A session without a sender or a recipient still sends no message.
    public func headerDelivery(acceptCarriesHeaders: Bool) -> HeaderDelivery {
        var delivery = HeaderDelivery()
        if !self.dryRun, let stage = self.stoppedAt {
            // Refused (at DATA or at end of data too): there is no message to carry any.
            for step in self.steps {
                let reason = step.result.stage.isEndOfData ? Stage.endOfDataHeaderAdvice : HeaderDelivery.refusedAdvice(at: stage)
                delivery.notOnMessage += step.result.headers.map { ($0, reason) }
            }
            return delivery
        }
        var pending: [MessageHeader] = []
        func carry() {
            if !pending.isEmpty { delivery.onMessage.append(pending.removeFirst()) }
        }
        for step in self.steps {
            let result = step.result
            guard !result.stage.isEndOfData else {
                delivery.notOnMessage += result.headers.map { ($0, Stage.endOfDataHeaderAdvice) }
                continue
            }
            pending += result.headers
            // An answer that lets the message go on carries one: `OK` for accept() does not.
            let carriesHeader = result.verdict.kind == .accept ? acceptCarriesHeaders : result.verdict.kind == .next || self.dryRun
            if result.stage == .rcpt || result.stage == .data, carriesHeader { carry() }
        }
        let reachedData = self.steps.contains { $0.result.stage == .data }
        // A session with no recipient (`vrules run` without `--rcpt`) never reaches DATA.
        let sentMessage = self.dryRun ? self.recipientsGiven > 0 : reachedData
        if self.dryRun && sentMessage {
            // The answers the client still asks for after the rules' refusal, each a DUNNO.
            if let stage = self.stoppedAt, stage < .rcpt {
                for _ in 0..<self.recipientsGiven { carry() }
            }
            if !reachedData { carry() }
        }
        let reason = sentMessage ? HeaderDelivery.noAnswerAdvice : HeaderDelivery.noMessageAdvice
        delivery.notOnMessage += pending.map { ($0, reason) }
        return delivery
    }
}

extension RuleEngine {
    /// Plays the session. With `captureVars`, the report carries `ctx.vars` as the
    /// session left it (for the test harness).
    public func simulate(_ session: SimulatedSession, captureVars: Bool = false) async -> SessionReport {
        var info = session.base
        info.rcpts = []
        let transaction = self.beginTransaction(info)
        var report = SessionReport(steps: [], stoppedAt: nil, acceptedRecipients: [])
        report.dryRun = session.dryRun
        report.recipientsGiven = session.base.mailFrom == nil ? 0 : session.recipients.count
        report.steps.reserveCapacity(info.stagesBeforeRecipients.count + session.recipients.count + 2)
        report.acceptedRecipients.reserveCapacity(session.recipients.count)
        await self.play(session, info: info, transaction: transaction, into: &report)
        if captureVars { report.vars = self.vars(of: transaction) }
        self.endTransaction(transaction)
        return report
    }

    private func play(_ session: SimulatedSession, info: SessionInfo, transaction: RuleTransaction,
                      into report: inout SessionReport) async {
        var info = info
        func run(_ stage: Stage, recipient: MailAddress? = nil, session: SessionInfo,
                 report: inout SessionReport) async -> Bool {
            let result = await self.evaluate(stage, in: transaction, session: session)
            report.steps.append(SessionReport.Step(result: result, recipient: recipient))
            return !result.verdict.kind.isFailure
        }

        for stage in info.stagesBeforeRecipients where !(await run(stage, session: info, report: &report)) {
            report.stoppedAt = stage
            return
        }
        guard info.mailFrom != nil else { return }
        // The bytes one transaction may hold in `vrules serve`, where this engine's state
        // would hold it.
        let share = RecipientLimit.share(ofTransactionMemory: RecipientLimit.transactionMemory(stateMemory: self.memoryLimit))
        for recipient in session.recipients {
            let cost = TransactionCost.of(info, recipients: report.acceptedRecipients)
            guard report.acceptedRecipients.count < session.maximumRecipients,
                  !RecipientLimit.exceeds(share: share, cost: cost, adding: recipient) else {
                let refused = StageResult(stage: .rcpt, verdict: Verdict(kind: .defer_, reply: RecipientLimit.reply),
                                          decidedBy: nil, failure: nil, trace: [])
                report.steps.append(SessionReport.Step(result: refused, recipient: recipient))
                continue
            }
            info.rcpts = report.acceptedRecipients + [recipient]
            if await run(.rcpt, recipient: recipient, session: info, report: &report) {
                report.acceptedRecipients.append(recipient)
            }
        }
        info.rcpts = report.acceptedRecipients
        guard !report.acceptedRecipients.isEmpty else {
            if !session.recipients.isEmpty { report.stoppedAt = .rcpt }
            return
        }
        for stage in [Stage.data, .preq] where !(await run(stage, session: info, report: &report)) {
            report.stoppedAt = stage
            return
        }
    }

    /// `ctx.vars` of a transaction as text: strings as they are, numbers and booleans
    /// printed, other values by type name.
    public func vars(of transaction: RuleTransaction) -> [String: String] {
        self.host.vars(dataReference: transaction.dataReference)
    }
}
