/// When a worker process is replaced after a task: Celery's `worker_max_tasks_per_child` and
/// `worker_max_memory_per_child`, as a pure value.
///
/// The executor asks after each task's outcome has arrived, never during a task, so a recycle
/// never interrupts one: the process that ran the N-th task, or grew past the memory limit,
/// is given no more work and told to shut down (its plugin's `fnhost_plugin_fini` runs); the
/// next task of that plugin starts a fresh process. As in Celery, a single task that takes a
/// process past the memory limit completes normally.
public struct RecyclePolicy: Sendable, Equatable {
    /// Why a worker process is recycled.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// It has run `limit` tasks (`max_tasks_per_child`).
        case maxTasksPerChild(limit: Int)
        /// Its resident memory, `rssKB` kilobytes, exceeds `limitKB` (`max_memory_per_child`).
        case maxMemoryPerChild(rssKB: Int, limitKB: Int)

        public var description: String {
            switch self {
            case .maxTasksPerChild(let limit):
                return "it has run \(limit) task\(limit == 1 ? "" : "s") (max_tasks_per_child \(limit))"
            case .maxMemoryPerChild(let rss, let limit):
                return "its resident memory, \(rss) KB, exceeds max_memory_per_child (\(limit) KB)"
            }
        }
    }

    /// Tasks a process runs before it is replaced; `nil`: no limit.
    public var maxTasksPerChild: Int?
    /// Kilobytes of resident memory a process may hold after a task; `nil`: no limit.
    public var maxMemoryPerChild: Int?

    /// Limits of 0 or less mean no limit, as in Celery.
    public init(maxTasksPerChild: Int? = nil, maxMemoryPerChild: Int? = nil) {
        self.maxTasksPerChild = maxTasksPerChild.flatMap { $0 > 0 ? $0 : nil }
        self.maxMemoryPerChild = maxMemoryPerChild.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Processes are never recycled.
    public static let never = RecyclePolicy()

    /// Whether the executor needs a process's resident memory after each task.
    public var needsResidentMemory: Bool { maxMemoryPerChild != nil }

    /// Why the process that has now run `tasksRun` tasks, holding `rssKB` kilobytes of resident
    /// memory (`nil`: unknown, never a reason), should be replaced; `nil` to keep it.
    public func shouldRecycle(tasksRun: Int, rssKB: Int?) -> Reason? {
        if let limit = maxTasksPerChild, tasksRun >= limit {
            return .maxTasksPerChild(limit: limit)
        }
        if let limit = maxMemoryPerChild, let rssKB, rssKB > limit {
            return .maxMemoryPerChild(rssKB: rssKB, limitKB: limit)
        }
        return nil
    }
}
