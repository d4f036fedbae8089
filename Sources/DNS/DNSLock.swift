#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex over pthreads, as `NIOLock` is. The DNS target takes no dependency (not even
/// Foundation's `NSLock`), and `Synchronization.Mutex` needs macOS 15 while the package
/// supports macOS 13.
///
/// On Linux it is glibc's adaptive mutex: a thread that finds it held spins a little before it
/// sleeps. The resolver cache's lock is held for a fraction of a microsecond and taken by every
/// event loop for every question; with the plain mutex, a loop that met the other one there
/// slept in `futex` and had to be woken: 0.32–0.47 `futex` calls per query on the
/// distinct-domain SPF benchmark under load, 0.24 with this one (docs/benchmarks.md).
package final class DNSLock: @unchecked Sendable {
    // @unchecked: a mutex; the pthread_mutex_t it owns is only used through lock/unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        self.mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        #if canImport(Glibc)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        defer { pthread_mutexattr_destroy(&attributes) }
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        let status = pthread_mutex_init(self.mutex, &attributes)
        #else
        let status = pthread_mutex_init(self.mutex, nil)
        #endif
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    package func withLock<Value>(_ body: () throws -> Value) rethrows -> Value {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body()
    }
}
