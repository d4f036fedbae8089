import Rules

/// What is known of one message transaction between its requests, and what holding it
/// costs. Owned by `PolicyService` (an actor), so it needs no lock of its own.
final class HeldTransaction {
    /// A stage's verdict is reused only for the same question: the same HELO name,
    /// sender or recipient. Hashed once, when made: a request looks its stages up several
    /// times (found, running, done).
    struct StageKey: Hashable {
        let stage: Stage
        let subject: String?
        private let hashCode: Int

        init(stage: Stage, subject: String?) {
            self.stage = stage
            self.subject = subject
            var hasher = Hasher()
            hasher.combine(stage)
            hasher.combine(subject)
            self.hashCode = hasher.finalize()
        }

        static func == (lhs: StageKey, rhs: StageKey) -> Bool {
            lhs.hashCode == rhs.hashCode && lhs.stage == rhs.stage && lhs.subject == rhs.subject
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.hashCode)
        }
    }

    /// A stage being evaluated (identical requests arriving meanwhile wait for its result),
    /// then its result.
    enum StageState {
        case running(waiters: [CheckedContinuation<StageResult, Never>])
        case done(StageResult)
    }

    var key: TransactionKey
    /// The engine the transaction began on and its transaction there (a reload changes the
    /// engine new transactions begin on, not this one's).
    let begun: (engine: RuleEngine, transaction: RuleTransaction)
    /// Room for a message's usual stages (connect to end of data, two recipients) from the start.
    var results = [StageKey: StageState](minimumCapacity: 8)
    var recipients: [MailAddress] = []
    /// Headers the rules added that Postfix has not been given yet (one `PREPEND` per answer).
    var pendingHeaders: [MessageHeader] = []
    var lastUsed: Double
    /// Requests being answered with it: a transaction in use is never evicted.
    var inFlight = 0
    /// Estimated bytes its `ctx` holds in the Lua state (`TransactionCost`).
    var cost: Int
    /// Taken out of the table (finished, expired or evicted).
    var removed = false

    /// The recipients the rules refused at `rcpt`, each counted once.
    var recipientsRefusedByRules: Int {
        self.results.reduce(0) { count, entry in
            guard entry.key.stage == .rcpt, case .done(let result) = entry.value, result.verdict.kind.isFailure else { return count }
            return count + 1
        }
    }

    /// The last sender and recipient parsed for its requests: the requests of one
    /// transaction repeat them (four identical requests per recipient is common).
    private var lastSender: (text: String, address: MailAddress)?
    private var lastRecipient: (text: String, address: MailAddress)?

    /// `MailAddress(text)`, parsed once while the transaction's requests repeat it.
    func parsedSender(_ text: String) -> MailAddress {
        if let last = self.lastSender, last.text == text { return last.address }
        let address = MailAddress(text)
        self.lastSender = (text, address)
        return address
    }

    /// Keeps `address`, parsed from `text` before the transaction was made, for its next requests.
    func remember(sender text: String, as address: MailAddress) {
        self.lastSender = (text, address)
    }

    func remember(recipient text: String, as address: MailAddress) {
        self.lastRecipient = (text, address)
    }

    func parsedRecipient(_ text: String) -> MailAddress {
        if let last = self.lastRecipient, last.text == text { return last.address }
        let address = MailAddress(text)
        self.lastRecipient = (text, address)
        return address
    }

    /// Links of the table's least-recently-used list. Both are strong: a weak link gives
    /// every transaction a side table (an allocation) and makes each link update an
    /// atomic operation on it. The table breaks the cycles: `TransactionTable` unlinks a
    /// transaction when it is removed, and every one left when the table goes.
    var older: HeldTransaction?
    var newer: HeldTransaction?

    init(key: TransactionKey, now: Double, cost: Int, begun: (engine: RuleEngine, transaction: RuleTransaction)) {
        self.key = key
        self.lastUsed = now
        self.cost = cost
        self.begun = begun
    }
}
