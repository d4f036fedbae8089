import DNS
import NIOCore

/// Answers by name, type and class (always IN here), least recently used evicted beyond
/// `capacity` entries. Each entry lives for its TTL (the smallest TTL of the chain and
/// records, or the RFC 2308 negative TTL) and is handed out with TTLs counted down.
///
/// A CNAME chain is stored whole under the name that was asked, so a hit never needs a
/// second lookup.
public final class DNSCache: @unchecked Sendable {
    // @unchecked: `storage` is only touched with `lock` held.
    private struct Entry {
        var question: DNSQuestion
        var answer: DNSAnswer
        /// `answer` with its TTLs counted down by `servedAge` whole seconds: what hits get,
        /// made again at most once a second, so that a hit copies no records.
        var served: DNSAnswer
        var servedAge: Int64 = 0
        var storedAt: NIODeadline
        var expiresAt: NIODeadline
        var newer: Int  // towards the most recently used end, or -1
        var older: Int  // towards the least recently used end, or -1
    }

    /// An intrusive doubly linked list over an array, so that a hit costs no allocation.
    private struct Storage {
        var index: [DNSQuestion: Int] = [:]
        var entries: [Entry] = []
        var free: [Int] = []
        var newest = -1
        var oldest = -1
        var hits = 0
        var misses = 0
    }

    public let capacity: Int
    private let now: @Sendable () -> NIODeadline
    private let lock = DNSLock()
    private var storage = Storage()

    /// `now` is injectable so that tests can move time forward.
    public init(capacity: Int, now: @escaping @Sendable () -> NIODeadline = { NIODeadline.now() }) {
        self.capacity = max(0, capacity)
        self.now = now
    }

    public var count: Int { self.lock.withLock { self.storage.index.count } }

    /// Hits and misses since creation, for diagnostics and tests.
    public var statistics: (hits: Int, misses: Int) { self.lock.withLock { (self.storage.hits, self.storage.misses) } }

    /// The cached answer with TTLs reduced by the time spent in the cache, or nil.
    public func lookup(_ question: DNSQuestion) -> DNSAnswer? {
        let now = self.now()
        return self.lock.withLock { () -> DNSAnswer? in
            Self.lookup(question, now: now, in: &self.storage)
        }
    }

    private static func lookup(_ question: DNSQuestion, now: NIODeadline, in storage: inout Storage) -> DNSAnswer? {
        guard let slot = storage.index[question] else {
            storage.misses += 1
            return nil
        }
        guard now < storage.entries[slot].expiresAt else {
            Self.unlink(slot, in: &storage)
            storage.index[question] = nil
            storage.free.append(slot)
            storage.misses += 1
            return nil
        }
        Self.unlink(slot, in: &storage)
        Self.pushNewest(slot, in: &storage)
        storage.hits += 1
        let age = (now - storage.entries[slot].storedAt).nanoseconds / 1_000_000_000
        guard age != storage.entries[slot].servedAge else { return storage.entries[slot].served }
        var answer = storage.entries[slot].answer
        let elapsed = UInt32(clamping: age)
        for index in answer.records.indices { answer.records[index].ttl -= min(elapsed, answer.records[index].ttl) }
        for index in answer.chain.indices { answer.chain[index].ttl -= min(elapsed, answer.chain[index].ttl) }
        storage.entries[slot].served = answer
        storage.entries[slot].servedAge = age
        return answer
    }

    /// Stores `answer` for `ttl` seconds. A zero TTL or a zero capacity stores nothing.
    public func store(_ answer: DNSAnswer, for question: DNSQuestion, ttl: UInt32) {
        guard self.capacity > 0, ttl > 0 else { return }
        let now = self.now()
        // Takes the place of the entry it replaces, which is destroyed (its records freed)
        // only after the lock is released: under load every store of a full cache evicts one,
        // and freeing it inside the lock was a third of the time the lock was held.
        var displaced = Entry(question: question, answer: answer, served: answer, storedAt: now,
                              expiresAt: now + .seconds(Int64(ttl)), newer: -1, older: -1)
        self.lock.withLock { Self.place(&displaced, for: question, capacity: self.capacity, in: &self.storage) }
    }

    /// Puts the entry in `displaced` in the cache under `question`; `displaced` then holds the
    /// entry it replaced (or, when it replaced none, a copy of itself), for the caller to
    /// destroy after the lock is released.
    private static func place(_ displaced: inout Entry, for question: DNSQuestion, capacity: Int, in storage: inout Storage) {
        if let slot = storage.index[question] {
            Self.unlink(slot, in: &storage)
            swap(&displaced, &storage.entries[slot])
            Self.pushNewest(slot, in: &storage)
            return
        }
        if storage.index.count >= capacity, storage.oldest >= 0 {
            let victim = storage.oldest
            Self.unlink(victim, in: &storage)
            storage.index[storage.entries[victim].question] = nil
            storage.free.append(victim)
        }
        let slot: Int
        if let reused = storage.free.popLast() {
            slot = reused
            swap(&displaced, &storage.entries[slot])
        } else {
            slot = storage.entries.count
            storage.entries.append(displaced)
        }
        storage.index[question] = slot
        Self.pushNewest(slot, in: &storage)
    }

    public func removeAll() {
        self.lock.withLock { self.storage = Storage() }
    }

    private static func unlink(_ slot: Int, in storage: inout Storage) {
        let newer = storage.entries[slot].newer
        let older = storage.entries[slot].older
        if newer >= 0 { storage.entries[newer].older = older } else if storage.newest == slot { storage.newest = older }
        if older >= 0 { storage.entries[older].newer = newer } else if storage.oldest == slot { storage.oldest = newer }
        storage.entries[slot].newer = -1
        storage.entries[slot].older = -1
    }

    private static func pushNewest(_ slot: Int, in storage: inout Storage) {
        storage.entries[slot].older = storage.newest
        storage.entries[slot].newer = -1
        if storage.newest >= 0 { storage.entries[storage.newest].newer = slot }
        storage.newest = slot
        if storage.oldest < 0 { storage.oldest = slot }
    }
}
