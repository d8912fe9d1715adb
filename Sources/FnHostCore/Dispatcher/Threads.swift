#if canImport(Glibc)
import Glibc
#endif

/// A mutex with a condition variable: the one synchronization primitive of the host's threads.
public final class ConditionLock: @unchecked Sendable {
    @usableFromInline var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    public init() {
        pthread_mutex_init(&mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// Runs `body` holding the lock. Inlinable, so callers in other modules get a specialized
    /// copy instead of a generic call on every hot-path lock.
    @inlinable
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Waits for a broadcast; call with the lock held.
    public func wait() { pthread_cond_wait(&cond, &mutex) }

    /// Waits for a broadcast until the monotonic `deadline`; false when it passed. Lock held.
    public func wait(until deadline: Double) -> Bool {
        let now = monotonicNow()
        if now >= deadline { return false }
        var ts = timespec()
        ts.tv_sec = Int(deadline.rounded(.down))
        ts.tv_nsec = Int((deadline - deadline.rounded(.down)) * 1e9)
        return pthread_cond_timedwait(&cond, &mutex, &ts) == 0 || monotonicNow() < deadline
    }

    /// Wakes every waiter; call with the lock held.
    public func broadcast() { pthread_cond_broadcast(&cond) }
}

/// Seconds on the monotonic clock.
public func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps the calling thread.
public func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

private final class ThreadBody {
    let body: () -> Void
    let name: String
    init(_ name: String, _ body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// Starts a detached-joinable OS thread running `body`. The host's blocking I/O (broker
/// connections, worker sockets) runs on such threads, never on the Swift cooperative pool.
@discardableResult
public func startThread(name: String, _ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(name, body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}
