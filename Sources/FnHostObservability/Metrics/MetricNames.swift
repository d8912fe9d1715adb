/// A metric family: name, help, type and label names. Every family fnhost exports is a static
/// member of `MetricNames`, so dashboards, alerts and code read the same names.
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }
    public let name: String
    public let help: String
    public let kind: Kind
    public let labels: [String]
    /// Upper bounds of a histogram's buckets (`+Inf` is implied).
    public let buckets: [Double]

    public init(_ name: String, _ kind: Kind, labels: [String] = [], buckets: [Double] = [], help: String) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.buckets = buckets
        self.help = help
    }
}

/// Every metric name fnhost exports, in one place.
///
/// The `celery_*` families have the names and labels of celery-exporter (danihodovic/
/// celery-exporter), so its dashboards and alerts work unchanged against fnhost with no
/// exporter deployed; `fnhost_*` are what a Celery worker cannot tell.
public enum MetricNames {
    /// Prometheus client's default histogram buckets (celery-exporter's too).
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
    static let task = ["name", "hostname", "queue_name"]

    // MARK: celery-exporter's

    public static let taskSent = MetricFamily("celery_task_sent_total", .counter, labels: task,
        help: "Sent tasks: retry copies fnhost published itself.")
    public static let taskReceived = MetricFamily("celery_task_received_total", .counter, labels: task,
        help: "Received tasks (reserved to run, or held for their ETA).")
    public static let taskStarted = MetricFamily("celery_task_started_total", .counter, labels: task,
        help: "Started tasks.")
    public static let taskSucceeded = MetricFamily("celery_task_succeeded_total", .counter, labels: task,
        help: "Succeeded tasks.")
    public static let taskFailed = MetricFamily("celery_task_failed_total", .counter, labels: task + ["exception"],
        help: "Failed tasks, by exception type.")
    public static let taskRejected = MetricFamily("celery_task_rejected_total", .counter, labels: task,
        help: "Rejected tasks: refused (bad content, unknown task, undecodable) or given back to the queue.")
    public static let taskRevoked = MetricFamily("celery_task_revoked_total", .counter, labels: task,
        help: "Revoked tasks (by id, expired, or terminated).")
    public static let taskRetried = MetricFamily("celery_task_retried_total", .counter, labels: task,
        help: "Retried tasks.")
    public static let taskRuntime = MetricFamily("celery_task_runtime_seconds", .histogram, labels: task, buckets: defaultBuckets,
        help: "Task runtime from start to outcome, in seconds.")
    public static let workerUp = MetricFamily("celery_worker_up", .gauge, labels: ["hostname"],
        help: "1 while this worker consumes.")
    public static let workerTasksActive = MetricFamily("celery_worker_tasks_active", .gauge, labels: ["hostname"],
        help: "Tasks running now.")
    public static let queueLength = MetricFamily("celery_queue_length", .gauge, labels: ["queue_name"],
        help: "Messages waiting in each queue this worker consumes (every priority bucket).")

    // MARK: fnhost's own

    public static let workerProcesses = MetricFamily("fnhost_worker_processes", .gauge, labels: ["hostname", "state"],
        help: "Worker processes by state: busy (running a task), idle, stopping.")
    public static let processRecycles = MetricFamily("fnhost_worker_process_recycles_total", .counter, labels: ["hostname", "reason"],
        help: "Worker processes replaced gracefully, by reason: max_tasks_per_child, max_memory_per_child, idle.")
    public static let processKills = MetricFamily("fnhost_worker_process_kills_total", .counter, labels: ["hostname", "reason"],
        help: "Worker processes killed or lost, by reason: time_limit, terminate, retire_timeout, shutdown, crashed.")
    public static let pluginLoads = MetricFamily("fnhost_plugin_loads_total", .counter, labels: ["hostname", "result"],
        help: "Plugin loads, by result: loaded or failed.")
    public static let pluginReloadFailures = MetricFamily("fnhost_plugin_reload_failures_total", .counter, labels: ["hostname"],
        help: "Plugin reloads rejected (the new version failed validation; the old one keeps serving).")
    public static let functionsLoaded = MetricFamily("fnhost_functions_loaded", .gauge, labels: ["hostname"],
        help: "Functions registered now.")
    public static let deadLetterDepth = MetricFamily("fnhost_dead_letter_queue_length", .gauge, labels: [],
        help: "Messages in the dead-letter queue.")
    public static let delayedDepth = MetricFamily("fnhost_delayed_store_length", .gauge, labels: [],
        help: "Messages waiting in the durable delayed store for their ETA.")
    public static let brokerReconnects = MetricFamily("fnhost_broker_reconnects_total", .counter, labels: ["hostname"],
        help: "Broker connections re-established after they broke.")
    public static let brokerConnected = MetricFamily("fnhost_broker_connected", .gauge, labels: ["hostname"],
        help: "1 when the last fetch reached the broker.")
    public static let consumerStall = MetricFamily("fnhost_consumer_seconds_since_progress", .gauge, labels: ["hostname"],
        help: "Seconds since the fetch loop last completed a round (liveness).")
    public static let tasksReserved = MetricFamily("fnhost_tasks_reserved", .gauge, labels: ["hostname"],
        help: "Prefetched tasks waiting for a slot.")
    public static let tasksScheduled = MetricFamily("fnhost_tasks_scheduled", .gauge, labels: ["hostname"],
        help: "Tasks held in memory for a near ETA.")
    public static let refused = MetricFamily("fnhost_messages_refused_total", .counter, labels: ["hostname", "queue_name"],
        help: "Messages dead-lettered without running: undecodable, or naming no loaded function.")

    /// Every family, in exposition order.
    public static let all: [MetricFamily] = [
        taskSent, taskReceived, taskStarted, taskSucceeded, taskFailed, taskRejected, taskRevoked, taskRetried, taskRuntime,
        workerUp, workerTasksActive, queueLength,
        workerProcesses, processRecycles, processKills, pluginLoads, pluginReloadFailures, functionsLoaded,
        deadLetterDepth, delayedDepth, brokerReconnects, brokerConnected, consumerStall, tasksReserved, tasksScheduled, refused,
    ]
}
