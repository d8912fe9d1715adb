import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// What happened to a worker process, for metrics.
public enum LifecycleEvent: Sendable, Equatable {
    /// Replaced gracefully: `max_tasks_per_child`, `max_memory_per_child`, `idle`.
    case recycled(reason: String)
    /// Killed or lost: `time_limit`, `terminate`, `retire_timeout`, `shutdown`, `crashed`.
    case killed(reason: String)
}

extension RecyclePolicy.Reason {
    /// The reason as a metric label.
    public var metricLabel: String {
        switch self {
        case .maxTasksPerChild: return "max_tasks_per_child"
        case .maxMemoryPerChild: return "max_memory_per_child"
        }
    }
}

/// Remote control over worker processes: `revoke(terminate=True)`, `worker_pid`, `stats`'
/// process list, pool resizing, and process counts by state for metrics.
extension ProcessExecutor: TerminatingExecutor {
    public func terminate(taskId: String, signal: Int32) -> Bool {
        let target: WorkerProcess? = lock.withLock {
            guard let (pid, _) = slots.first(where: { $0.value.tasks[taskId] != nil }) else { return nil }
            slots[pid]!.terminated = true
            slots[pid]!.stopping = true
            return slots[pid]!.process
        }
        guard let target else { return false }
        logger.warning("revoke(terminate=True): sending signal \(signal) to worker process \(target.pid) running task \(taskId)")
        lifecycle?(.killed(reason: "terminate"))
        _ = Glibc.kill(target.pid, signal)
        return true
    }

    public func workerPid(ofTask taskId: String) -> Int32? {
        lock.withLock { slots.first(where: { $0.value.tasks[taskId] != nil })?.key }
    }

    public var workerPids: [Int32] { lock.withLock { slots.keys.sorted() } }

    /// Worker processes by state: busy (running a task), idle, stopping.
    public var processStates: (busy: Int, idle: Int, stopping: Int) {
        lock.withLock {
            var busy = 0, idle = 0, stopping = 0
            for slot in slots.values {
                if slot.stopping { stopping += 1 } else if slot.tasks.isEmpty { idle += 1 } else { busy += 1 }
            }
            return (busy, idle, stopping)
        }
    }

    /// Changes the cap on worker processes (`pool_grow`, `pool_shrink`, `autoscale`). Shrinking
    /// never interrupts a task: no process starts above the cap, and idle ones exit through the idle timeout.
    public func setMaxProcesses(_ n: Int) {
        lock.withLock { processCap = max(1, n) }
        assign()
    }
}
