#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SPF results kept for reuse by the next check of the same client IP and domain, for as
/// long as every DNS answer the check read stays valid (the shortest TTL, less a second).
///
/// A mail server checks the same sender domain from the same client over and over (a
/// provider's outbound host, one message after another); each check walks the same records
/// through the same cached answers to the same result. Only a result that depended on
/// nothing but the IP, the domain and those answers is kept (`SPFCheck.reusableFor`): not
/// one from a record with a macro (which may read the sender, the HELO name or the PTR
/// names), nor one that read an explanation, a PTR name, an answer without records (whose
/// TTL the answer does not carry) or a DNS failure, nor a `permerror` or `temperror`.
///
/// A resolver with a cache owns one (`DNSResolving.spfResultMemo`), bounded like its cache:
/// at most `capacity` results. When full, expired ones are dropped, and if that leaves more
/// than half, the memo is emptied and starts again: no bookkeeping on the hot path, and a
/// sweep only after at least `capacity / 2` stores, however the results expire.
public final class SPFResultMemo: @unchecked Sendable {
    // @unchecked: `entries` is only touched with `lock` held.

    private struct Key: Hashable {
        var ip: IPAddress
        var domain: String
    }

    private struct Entry {
        var result: SPFResult
        /// Monotonic nanoseconds.
        var expires: UInt64
    }

    public let capacity: Int
    private let now: @Sendable () -> UInt64
    private let lock = DNSLock()
    private var entries: [Key: Entry] = [:]

    /// `now` gives monotonic nanoseconds; injectable for tests.
    public init(capacity: Int, now: @escaping @Sendable () -> UInt64 = SPFResultMemo.monotonicNanoseconds) {
        self.capacity = max(0, capacity)
        self.now = now
    }

    /// How many results are held, expired ones included.
    public var count: Int { self.lock.withLock { self.entries.count } }

    /// The result kept for `ip` and `domain` (as check_host() was given it), if still valid.
    public func result(ip: IPAddress, domain: String) -> SPFResult? {
        let key = Key(ip: ip.unmapped, domain: domain)
        let now = self.now()
        return self.lock.withLock {
            guard let entry = self.entries[key] else { return nil }
            guard entry.expires > now else {
                self.entries[key] = nil
                return nil
            }
            return entry.result
        }
    }

    /// Keeps `result` for `seconds`.
    public func store(_ result: SPFResult, ip: IPAddress, domain: String, seconds: UInt32) {
        guard self.capacity > 0, seconds > 0 else { return }
        let key = Key(ip: ip.unmapped, domain: domain)
        let now = self.now()
        let entry = Entry(result: result, expires: now + UInt64(seconds) * 1_000_000_000)
        self.lock.withLock {
            if self.entries[key] == nil && self.entries.count >= self.capacity {
                self.entries = self.entries.filter { $0.value.expires > now }
                if self.entries.count > self.capacity / 2 { self.entries.removeAll(keepingCapacity: true) }
            }
            self.entries[key] = entry
        }
    }

    @Sendable public static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
