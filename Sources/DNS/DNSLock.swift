#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex over pthreads, as `NIOLock` is. The DNS target takes no dependency (not even
/// Foundation's `NSLock`), and `Synchronization.Mutex` needs macOS 15 while the package
/// supports macOS 13.
final class DNSLock: @unchecked Sendable {
    // @unchecked: a mutex; the pthread_mutex_t it owns is only used through lock/unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        self.mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(self.mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    func withLock<Value>(_ body: () throws -> Value) rethrows -> Value {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body()
    }
}
