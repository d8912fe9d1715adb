import CFnHostSupport

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

/// An OS thread that is joined at most once.
///
/// A joined thread's handle may name a new thread soon after (glibc reuses them), so joining
/// one twice can wait on, or corrupt, someone else's thread. `join()` is safe to call any number
/// of times from any threads: the first joins, the others wait until that join has returned.
public final class JoinableThread: @unchecked Sendable {
    private let lock = ConditionLock()
    private var handle: pthread_t?
    private var joined = false

    fileprivate init(_ handle: pthread_t) { self.handle = handle }

    /// Returns once the thread has ended. Called on the thread itself, it returns at once
    /// (the thread cannot wait for its own end; it is joined by the next caller from elsewhere).
    public func join() {
        let mine: pthread_t? = lock.withLock {
            guard let h = handle else {
                while !joined { lock.wait() }
                return nil
            }
            if pthread_equal(h, pthread_self()) != 0 { return nil }
            handle = nil
            return h
        }
        guard let mine else { return }
        pthread_join(mine, nil)
        lock.withLock {
            joined = true
            lock.broadcast()
        }
    }
}

/// Starts an OS thread running `body`, to be joined (`JoinableThread.join`) by whoever stops it.
/// The host's blocking I/O (broker connections, worker sockets) runs on such threads, never on
/// the Swift cooperative pool.
public func startThread(name: String, _ body: @escaping () -> Void) -> JoinableThread {
    JoinableThread(spawnThread(name: name, detached: false, body))
}

/// Starts an OS thread running `body` that nobody joins: its stack and handle go back to the
/// system when `body` returns. For threads that end on their own (a worker process's reader)
/// or live as long as the process; a joinable thread that is never joined keeps its stack
/// mapped for the life of the process.
public func startDetachedThread(name: String, _ body: @escaping () -> Void) {
    _ = spawnThread(name: name, detached: true, body)
}

private func spawnThread(name: String, detached: Bool, _ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(name, body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    pthread_attr_setdetachstate(&attr, Int32(detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE))
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { raw in
        let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        _ = fnhost_set_thread_name(box.name)  // for `top -H` and debuggers
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}
