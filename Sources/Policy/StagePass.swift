import Rules

/// One request's walk through its transaction's stages, up to the stage it asks about: the
/// stages, how far it got, and the answer so far. `PolicyShard` runs it on as far as it
/// goes without waiting, and on from there once what it waits for is in. A class: it is
/// handed from the synchronous attempt to the task that completes it, never copied.
final class StagePass {
    let request: PolicyRequest
    let transaction: HeldTransaction
    /// `ctx` as the stages see it.
    let session: SessionInfo
    let stages: [Stage]
    /// The stage the request asks about (nil: VRFY and ETRN, connect and HELO only).
    let target: Stage?
    /// The index of the stage to run next.
    var next = 0
    var decision = PolicyDecision.dunno

    init(request: PolicyRequest, transaction: HeldTransaction, session: SessionInfo, stages: [Stage], target: Stage?) {
        self.request = request
        self.transaction = transaction
        self.session = session
        self.stages = stages
        self.target = target
    }

    /// A pass decided before any stage runs (a recipient past the transaction's bounds),
    /// concluded as any other: its answer may carry a header.
    convenience init(request: PolicyRequest, transaction: HeldTransaction, session: SessionInfo, concluded decision: PolicyDecision,
                     target: Stage?) {
        self.init(request: request, transaction: transaction, session: session, stages: [], target: target)
        self.decision = decision
    }
}

/// What a pass's current stage waits for.
enum StageWait {
    /// This request's evaluation of the stage waits for DNS answers; its result is filed
    /// under `key`. `retried`: the evaluation is the second, after an eviction made room.
    case answers(PendingStageEvaluation, key: HeldTransaction.StageKey, retried: Bool)
    /// An identical request is evaluating the stage: its result is reused.
    case identical(HeldTransaction.StageKey)
}

/// How a request's pass begins: with its stages, or refused before any runs.
enum PassStart {
    case pass(StagePass)
    case refused(PolicyDecision)
}

/// What `PolicyShard.decideNow` comes to.
enum DecisionOutcome: Sendable {
    case decided(PolicyDecision)
    /// A stage waits: `PolicyShard.complete` awaits it and makes the decision.
    case waiting(PendingDecision)
}

/// A decision that could not be made at once: the pass so far and what it waits for.
struct PendingDecision: @unchecked Sendable {
    // @unchecked: made and completed on the shard's actor, which owns the transaction.
    let pass: StagePass
    let wait: StageWait
    let state: ProtocolState
    /// When the request was taken (for the request duration metric).
    let started: UInt64
}
