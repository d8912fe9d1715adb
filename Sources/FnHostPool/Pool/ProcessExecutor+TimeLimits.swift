import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// Hard time limits: one thread sleeps until the earliest deadline of the tasks running now and
/// kills the process of each task past its limit (`hardLimitReached`).
///
/// A deadline lives in its running task's slot and goes with it, so what the host keeps for time
/// limits is bounded by the tasks running, not by the tasks started within the last limit (a
/// timer per task, as before, held ~500 bytes for `time_limit` seconds after a task that took a
/// millisecond: 50 MB after 100,000 tasks with `time_limit: 600`).
extension ProcessExecutor {
    /// Wakes the watcher for a deadline earlier than the one it sleeps until, starting it on
    /// first use. Lock held.
    func wakeTimeLimitWatcher() {
        if !timeLimitWatcherStarted {
            timeLimitWatcherStarted = true
            startDetachedThread(name: "fnhost-timelimit") { [self] in watchTimeLimits() }
        }
        lock.broadcast()
    }

    /// The watcher's loop: until the executor is closed and its processes are gone (warm
    /// shutdown still enforces the limits of the tasks it waits for).
    private func watchTimeLimits() {
        while true {
            let due: [(pid: pid_t, serial: Int, seconds: Double)]? = lock.withLock {
                while !(closed && slots.isEmpty) {
                    let now = monotonicNow()
                    var due: [(pid: pid_t, serial: Int, seconds: Double)] = []
                    var earliest = Double.infinity
                    for (pid, slot) in slots where slot.timeLimitHit == nil {
                        for task in slot.tasks.values {
                            guard let deadline = task.deadline else { continue }
                            if deadline <= now {
                                due.append((pid, task.serial, task.request.hardTimeLimit ?? 0))
                            } else {
                                earliest = min(earliest, deadline)
                            }
                        }
                    }
                    if !due.isEmpty {
                        timeLimitWake = -.infinity  // busy: a new task need not wake it
                        return due
                    }
                    timeLimitWake = earliest
                    if earliest.isInfinite { lock.wait() } else { _ = lock.wait(until: earliest) }
                }
                return nil
            }
            guard let due else { return }
            for task in due { hardLimitReached(pid: task.pid, serial: task.serial, seconds: task.seconds) }
        }
    }
}
