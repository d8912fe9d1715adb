import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// The one thread that starts worker processes, for as long as the host lives.
///
/// A worker asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), and the
/// kernel sends it when the *thread* that spawned the worker exits, not the process. Workers are
/// started from whichever thread needs one: the reader thread of a worker that just died
/// starts its replacement, then exits, which would kill the new worker as soon as it had set
/// the signal. Spawning every worker from this thread, which never exits, leaves the signal
/// for what it is for: the host going away.
final class SpawnThread: @unchecked Sendable {
    static let shared = SpawnThread()

    private let lock = ConditionLock()
    private var jobs: [() -> Void] = []

    private init() {
        startDetachedThread(name: "fnhost-spawn") { [self] in run() }
    }

    /// Runs `job` on the spawn thread and returns its result; the caller waits.
    func perform<T>(_ job: @escaping () -> T) -> T {
        let done = ConditionLock()
        var result: T?
        var finished = false  // not `result != nil`: T may itself be optional
        lock.withLock {
            jobs.append {
                let value = job()
                done.withLock {
                    result = value
                    finished = true
                    done.broadcast()
                }
            }
            lock.broadcast()
        }
        return done.withLock {
            while !finished { done.wait() }
            return result!
        }
    }

    private func run() {
        while true {
            let batch: [() -> Void] = lock.withLock {
                while jobs.isEmpty { lock.wait() }
                defer { jobs.removeAll() }
                return jobs
            }
            for job in batch { job() }
        }
    }
}
