/// Plays one SMTP session through the stages the way an MTA would, stopping where the
/// MTA would stop: a failure at connect, helo, authenticate or mail ends the session; a
/// refused recipient is dropped and the others go on; with no recipient left there is no DATA.
public struct SimulatedSession: Sendable {
    public var base: SessionInfo
    public var recipients: [MailAddress]

    public init(base: SessionInfo, recipients: [MailAddress]) {
        self.base = base
        self.recipients = recipients
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

    public var outcome: String {
        if let stage = self.stoppedAt { return "stopped at \(stage.rawValue)" }
        return "completed"
    }
}

extension RuleEngine {
    public func simulate(_ session: SimulatedSession) async -> SessionReport {
        var info = session.base
        info.rcpts = []
        let transaction = self.beginTransaction(info)
        defer { self.endTransaction(transaction) }
        var report = SessionReport(steps: [], stoppedAt: nil, acceptedRecipients: [])

        func run(_ stage: Stage, recipient: MailAddress? = nil) async -> StageResult {
            let result = await self.evaluate(stage, in: transaction, session: info)
            report.steps.append(SessionReport.Step(result: result, recipient: recipient))
            return result
        }

        var stages: [Stage] = [.connect]
        if info.helo != nil { stages.append(.helo) }
        if info.authMechanism != nil || info.authUsername != nil { stages.append(.authenticate) }
        for stage in stages where await run(stage).verdict.kind.isFailure {
            report.stoppedAt = stage
            return report
        }
        guard info.mailFrom != nil else { return report }
        if await run(.mail).verdict.kind.isFailure {
            report.stoppedAt = .mail
            return report
        }
        for recipient in session.recipients {
            info.rcpts = report.acceptedRecipients + [recipient]
            if await run(.rcpt, recipient: recipient).verdict.kind.isFailure { continue }
            report.acceptedRecipients.append(recipient)
        }
        info.rcpts = report.acceptedRecipients
        guard !report.acceptedRecipients.isEmpty else {
            if !session.recipients.isEmpty { report.stoppedAt = .rcpt }
            return report
        }
        for stage in [Stage.data, .preq] where await run(stage).verdict.kind.isFailure {
            report.stoppedAt = stage
            return report
        }
        return report
    }
}
