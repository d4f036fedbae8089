import DNS
import NIOCore

/// Answers by name, type and class (always IN here), least recently used evicted beyond
/// `capacity` entries or `maximumBytes` of their estimated size, whichever binds first: an
/// entry is most often a few hundred bytes, but an answer may be as large as a TCP reply,
/// and a sender chooses names to ask about (its domain's TXT for SPF), so a count alone
/// would let it make the cache `capacity` × 64 KiB. Each entry lives for its TTL (the
/// smallest TTL of the chain and records, or the RFC 2308 negative TTL) and is handed out
/// with TTLs counted down.
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
        /// `answer.estimatedBytes`, counted in `Storage.bytes` while the entry is held.
        var bytes: Int
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
        /// The estimated bytes of the entries held.
        var bytes = 0
        var hits = 0
        var misses = 0
    }

    public let capacity: Int
    /// The most bytes the entries held may take, by `DNSAnswer.estimatedBytes`.
    public let maximumBytes: Int
    /// What `maximumBytes` is per entry of `capacity` unless given: ten times a typical
    /// answer, so that it binds only when answers are unusually large.
    public static let bytesPerEntry = 4_096
    private let now: @Sendable () -> NIODeadline
    private let lock = DNSLock()
    private var storage = Storage()

    /// `now` is injectable so that tests can move time forward.
    public init(capacity: Int, maximumBytes: Int? = nil, now: @escaping @Sendable () -> NIODeadline = { NIODeadline.now() }) {
        self.capacity = max(0, capacity)
        self.maximumBytes = maximumBytes ?? self.capacity.multipliedReportingOverflow(by: Self.bytesPerEntry).partialValue
        self.now = now
    }

    public var count: Int { self.lock.withLock { self.storage.index.count } }

    /// The estimated bytes of the entries held.
    public var byteCount: Int { self.lock.withLock { self.storage.bytes } }

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
            Self.release(slot, in: &storage)
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
        let bytes = answer.estimatedBytes
        guard bytes <= self.maximumBytes else { return }
        let now = self.now()
        // Takes the place of the entry it replaces, which is destroyed (its records freed)
        // only after the lock is released: under load every store of a full cache evicts one,
        // and freeing it inside the lock was a third of the time the lock was held. So are
        // the further entries the byte bound evicts.
        var displaced = Entry(question: question, answer: answer, served: answer, bytes: bytes, storedAt: now,
                              expiresAt: now + .seconds(Int64(ttl)), newer: -1, older: -1)
        var evicted: [DNSAnswer] = []
        self.lock.withLock {
            Self.place(&displaced, for: question, capacity: self.capacity, maximumBytes: self.maximumBytes,
                       in: &self.storage, evicted: &evicted)
        }
    }

    /// Puts the entry in `displaced` in the cache under `question`; `displaced` then holds the
    /// entry it replaced (or, when it replaced none, a copy of itself), for the caller to
    /// destroy after the lock is released.
    private static func place(_ displaced: inout Entry, for question: DNSQuestion, capacity: Int, maximumBytes: Int,
                              in storage: inout Storage, evicted: inout [DNSAnswer]) {
        if let slot = storage.index[question] {
            Self.unlink(slot, in: &storage)
            storage.bytes += displaced.bytes - storage.entries[slot].bytes
            swap(&displaced, &storage.entries[slot])
            Self.pushNewest(slot, in: &storage)
            Self.evictForBytes(maximumBytes, keeping: slot, in: &storage, evicted: &evicted)
            return
        }
        if storage.index.count >= capacity, storage.oldest >= 0 {
            let victim = storage.oldest
            Self.unlink(victim, in: &storage)
            storage.index[storage.entries[victim].question] = nil
            storage.bytes -= storage.entries[victim].bytes
            storage.free.append(victim)
        }
        storage.bytes += displaced.bytes
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
        Self.evictForBytes(maximumBytes, keeping: slot, in: &storage, evicted: &evicted)
    }

    /// Evicts the least recently used entries but `slot` until the entries held fit in
    /// `maximumBytes`, their answers moved to `evicted` to be freed after the lock.
    private static func evictForBytes(_ maximumBytes: Int, keeping slot: Int, in storage: inout Storage,
                                      evicted: inout [DNSAnswer]) {
        while storage.bytes > maximumBytes, storage.oldest >= 0, storage.oldest != slot {
            let victim = storage.oldest
            evicted.append(storage.entries[victim].answer)
            Self.release(victim, in: &storage)
        }
    }

    /// Takes the entry at `slot` out of the cache and frees its place, dropping its records
    /// (a free place keeps nothing of them, so the bytes counted are the bytes held).
    private static func release(_ slot: Int, in storage: inout Storage) {
        Self.unlink(slot, in: &storage)
        storage.index[storage.entries[slot].question] = nil
        storage.bytes -= storage.entries[slot].bytes
        storage.entries[slot].bytes = 0
        storage.entries[slot].answer = .released
        storage.entries[slot].served = .released
        storage.free.append(slot)
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

extension DNSAnswer {
    /// What a free place in the cache holds instead of an answer.
    fileprivate static let released = DNSAnswer(name: "", type: .a, outcome: .ok, records: [])

    /// About what the answer takes in memory: a fixed part, and each record's name and data
    /// (strings and arrays with their headers). An estimate, for bounding the cache.
    var estimatedBytes: Int {
        var total = 256 + self.name.utf8.count + (self.security.reason?.utf8.count ?? 0)
        for record in self.records { total += record.estimatedBytes }
        for record in self.chain { total += record.estimatedBytes }
        return total
    }
}

extension DNSRecord {
    fileprivate var estimatedBytes: Int {
        let data: Int
        switch self.data {
        case .a, .aaaa: data = 32
        case .ns(let name), .cname(let name), .ptr(let name): data = name.utf8.count
        case .mx(_, let exchange): data = exchange.utf8.count
        case .srv(_, _, _, let target): data = target.utf8.count
        case .txt(let strings): data = strings.reduce(0) { $0 + 32 + $1.count }
        case .soa(let soa): data = soa.mname.utf8.count + soa.rname.utf8.count + 20
        case .unknown(_, let bytes): data = bytes.count
        }
        return 64 + self.name.utf8.count + data
    }
}
