import FnHostCore

/// Turns task events into celery-exporter's counters and runtime histogram.
///
/// Threading: any thread; only touches the registry (one lock), never blocks on I/O.
public final class TaskMetrics: TaskObserver, @unchecked Sendable {
    private let registry: MetricsRegistry
    private let hostname: String

    public init(registry: MetricsRegistry, hostname: String) {
        self.registry = registry
        self.hostname = hostname
    }

    private func labels(_ r: TaskRequest) -> [String] { [r.name, hostname, r.delivery.queue] }

    public func observe(_ event: TaskEvent) {
        switch event {
        case .received(let r):
            registry.increment(MetricNames.taskReceived, labels(r))
        case .started(let r):
            registry.increment(MetricNames.taskStarted, labels(r))
        case .succeeded(let r, _, let runtime):
            registry.increment(MetricNames.taskSucceeded, labels(r))
            registry.observe(MetricNames.taskRuntime, labels(r), runtime)
        case .failed(let r, let e, _, let runtime):
            registry.increment(MetricNames.taskFailed, labels(r) + [e.type])
            registry.observe(MetricNames.taskRuntime, labels(r), runtime)
        case .retried(let r, _, let runtime):
            registry.increment(MetricNames.taskRetried, labels(r))
            registry.increment(MetricNames.taskSent, labels(r))
            registry.observe(MetricNames.taskRuntime, labels(r), runtime)
        case .revoked(let r, _, _, _):
            registry.increment(MetricNames.taskRevoked, labels(r))
        case .rejected(let r, _):
            registry.increment(MetricNames.taskRejected, labels(r))
        case .refused(let queue, _, let name):
            registry.increment(MetricNames.refused, [hostname, queue])
            registry.increment(MetricNames.taskRejected, [name ?? "", hostname, queue])
        }
    }
}
