import FnHostCore

/// Turns task events into celery-exporter's counters and runtime histogram.
///
/// The series of each (task name, queue) are looked up once and kept, so a task's events add to
/// them without hashing the same label values again.
///
/// Threading: any thread; only touches the registry and its own table of series (a lock each),
/// never blocks on I/O.
public final class TaskMetrics: TaskObserver, @unchecked Sendable {
    /// The counters kept per task name and queue.
    private enum Counted: Int, CaseIterable {
        case received, started, succeeded, retried, sent, revoked, rejected

        var family: MetricFamily {
            switch self {
            case .received: MetricNames.taskReceived
            case .started: MetricNames.taskStarted
            case .succeeded: MetricNames.taskSucceeded
            case .retried: MetricNames.taskRetried
            case .sent: MetricNames.taskSent
            case .revoked: MetricNames.taskRevoked
            case .rejected: MetricNames.taskRejected
            }
        }
    }

    /// The series of one task name on one queue, each made on first use. Guarded by the lock.
    private final class TaskSeries: @unchecked Sendable {
        var counters = [MetricsRegistry.CounterSeries?](repeating: nil, count: Counted.allCases.count)
        var runtime: MetricsRegistry.HistogramSeries?
    }

    private let registry: MetricsRegistry
    private let hostname: String
    private let lock = ConditionLock()
    /// By task name, then queue. Bounded by the functions served times the queues consumed.
    private var series: [String: [String: TaskSeries]] = [:]
    /// The series used last, newest first (at most `recentCount`).
    private var recent: [(name: String, queue: String, series: TaskSeries)] = []
    private static let recentCount = 8

    public init(registry: MetricsRegistry, hostname: String) {
        self.registry = registry
        self.hostname = hostname
    }

    private func labels(_ r: TaskRequest) -> [String] { [r.name, hostname, r.delivery.queue] }

    /// The counter `which` of `r`'s task name and queue.
    private func counter(_ which: Counted, _ r: TaskRequest) -> MetricsRegistry.CounterSeries {
        let (entry, known) = lock.withLock { () -> (TaskSeries, MetricsRegistry.CounterSeries?) in
            let entry = taskSeries(r)
            return (entry, entry.counters[which.rawValue])
        }
        if let known { return known }
        let made = registry.counter(which.family, labels(r))
        lock.withLock { entry.counters[which.rawValue] = made }
        return made
    }

    private func runtime(_ r: TaskRequest) -> MetricsRegistry.HistogramSeries {
        let (entry, known) = lock.withLock { () -> (TaskSeries, MetricsRegistry.HistogramSeries?) in
            let entry = taskSeries(r)
            return (entry, entry.runtime)
        }
        if let known { return known }
        let made = registry.histogram(MetricNames.taskRuntime, labels(r))
        lock.withLock { entry.runtime = made }
        return made
    }

    /// The series of `r`'s task name and queue: from the few used last (compared without
    /// hashing; names and queues are short), else from the table. Lock held.
    private func taskSeries(_ r: TaskRequest) -> TaskSeries {
        let name = r.name, queue = r.delivery.queue
        for i in recent.indices where recent[i].name == name && recent[i].queue == queue { return recent[i].series }
        let found: TaskSeries
        if let known = series[name]?[queue] {
            found = known
        } else {
            found = TaskSeries()
            series[name, default: [:]][queue] = found
        }
        if recent.count == Self.recentCount { recent.removeLast() }
        recent.insert((name, queue, found), at: 0)
        return found
    }

    public func observe(_ event: TaskEvent) {
        switch event {
        case .received(let r):
            registry.increment(counter(.received, r))
        case .started(let r):
            registry.increment(counter(.started, r))
        case .succeeded(let r, _, let runtime):
            registry.increment(counter(.succeeded, r))
            registry.observe(self.runtime(r), runtime)
        case .failed(let r, let e, _, let runtime):
            registry.increment(MetricNames.taskFailed, labels(r) + [e.type])
            registry.observe(self.runtime(r), runtime)
        case .retried(let r, _, let runtime):
            registry.increment(counter(.retried, r))
            registry.increment(counter(.sent, r))
            registry.observe(self.runtime(r), runtime)
        case .revoked(let r, _, _, _):
            registry.increment(counter(.revoked, r))
        case .rejected(let r, _):
            registry.increment(counter(.rejected, r))
        case .refused(let queue, _, let name):
            registry.increment(MetricNames.refused, [hostname, queue])
            registry.increment(MetricNames.taskRejected, [name ?? "", hostname, queue])
        }
    }
}
