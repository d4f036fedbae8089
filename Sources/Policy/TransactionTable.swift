/// The held transactions by key, in least-recently-used order, with their summed cost.
/// Every operation is O(1) except the walks, which start at the oldest end and stop at
/// the first transaction they can use.
final class TransactionTable {
    private var byKey: [TransactionKey: HeldTransaction] = [:]
    /// The least recently used end of the list.
    private var oldest: HeldTransaction?
    private var newest: HeldTransaction?
    /// The summed `cost` of the held transactions.
    private(set) var bytes = 0

    deinit {
        // The links are strong both ways (see `HeldTransaction.older`): the cycles go with the table.
        while let transaction = self.oldest { self.unlink(transaction) }
    }

    var count: Int { self.byKey.count }

    subscript(key: TransactionKey) -> HeldTransaction? { self.byKey[key] }

    func insert(_ transaction: HeldTransaction) {
        precondition(self.byKey[transaction.key] == nil, "one transaction per key")
        self.byKey[transaction.key] = transaction
        self.bytes += transaction.cost
        self.append(transaction)
    }

    @discardableResult
    func remove(_ key: TransactionKey) -> HeldTransaction? {
        guard let transaction = self.byKey.removeValue(forKey: key) else { return nil }
        self.bytes -= transaction.cost
        self.unlink(transaction)
        transaction.removed = true
        return transaction
    }

    /// Files `transaction` under another key (the first request with an `instance`
    /// adopts what was evaluated for its connection before).
    func rekey(_ transaction: HeldTransaction, to key: TransactionKey) {
        self.byKey[transaction.key] = nil
        transaction.key = key
        self.byKey[key] = transaction
    }

    /// Marks `transaction` as the most recently used.
    func touch(_ transaction: HeldTransaction, now: Double) {
        transaction.lastUsed = now
        self.unlink(transaction)
        self.append(transaction)
    }

    func setCost(_ transaction: HeldTransaction, to cost: Int) {
        self.bytes += cost - transaction.cost
        transaction.cost = cost
    }

    /// The least recently used transaction no request is using, other than `excluded`.
    func oldestIdle(excluding excluded: HeldTransaction? = nil) -> HeldTransaction? {
        var candidate = self.oldest
        while let current = candidate {
            if current.inFlight == 0 && current !== excluded { return current }
            candidate = current.newer
        }
        return nil
    }

    /// The idle transactions last used before `cutoff`.
    func idle(before cutoff: Double) -> [HeldTransaction] {
        var expired: [HeldTransaction] = []
        var candidate = self.oldest
        while let current = candidate, current.lastUsed < cutoff {
            if current.inFlight == 0 { expired.append(current) }
            candidate = current.newer
        }
        return expired
    }

    private func append(_ transaction: HeldTransaction) {
        transaction.older = self.newest
        transaction.newer = nil
        if let newest = self.newest {
            newest.newer = transaction
        } else {
            self.oldest = transaction
        }
        self.newest = transaction
    }

    private func unlink(_ transaction: HeldTransaction) {
        let older = transaction.older
        let newer = transaction.newer
        if let newer { newer.older = older } else if self.newest === transaction { self.newest = older }
        if let older { older.newer = newer } else if self.oldest === transaction { self.oldest = newer }
        transaction.older = nil
        transaction.newer = nil
    }
}
