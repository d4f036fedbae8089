import CEpoll
import DNS
import Glibc

/// Query IDs (RFC 5452 §4.3: unpredictable, from a cryptographic source) read from the
/// kernel's CSPRNG 256 at a time. A `getrandom` for each query was one more system call per
/// question, beside the connect, send, receive and disconnect it cannot do without.
///
/// vrules never forks, so no two processes can hand out the same buffered IDs.
final class QueryIDPool: @unchecked Sendable {
    // @unchecked: `ids` and `next` are only touched with `lock` held.
    static let shared = QueryIDPool()

    private static let batch = 256
    private let lock = DNSLock()
    private var ids = [UInt16](repeating: 0, count: QueryIDPool.batch)
    private var next = QueryIDPool.batch

    /// The batch's next ID: each is handed out once, and a new batch read when it is spent.
    func take() -> UInt16 {
        self.lock.withLock {
            if self.next == self.ids.count {
                Self.refill(&self.ids)
                self.next = 0
            }
            defer { self.next += 1 }
            return self.ids[self.next]
        }
    }

    private static func refill(_ ids: inout [UInt16]) {
        let filled = ids.withUnsafeMutableBytes { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let read = vrules_getrandom(bytes.baseAddress! + offset, UInt(bytes.count - offset))
                if read < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += read
            }
            return true
        }
        guard !filled else { return }
        // No getrandom (a kernel before 3.17): the standard library's own source, one call each.
        var generator = SystemRandomNumberGenerator()
        for index in ids.indices { ids[index] = generator.next() }
    }
}
