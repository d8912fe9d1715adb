import CeleryProtocol
import FnHostCore

extension Serve {
    /// What the `conf` remote-control command answers: the host's settings under Celery's
    /// names, with every password masked (a secret never reaches a reply).
    static func celeryConf(broker: String, backend: String, concurrency: Int, prefetch: Int, maxTasks: Int?, maxMemory: Int?,
                           pool: String, queues: [String], events: Bool) -> JSONObject {
        [
            "broker_url": .string(ConnectionURL.mask(broker)),
            "result_backend": .string(ConnectionURL.mask(backend)),
            "worker_concurrency": .int(Int64(concurrency)),
            "worker_prefetch_multiplier": .int(Int64(prefetch)),
            "worker_max_tasks_per_child": maxTasks.map { .int(Int64($0)) } ?? .null,
            "worker_max_memory_per_child": maxMemory.map { .int(Int64($0)) } ?? .null,
            "worker_pool": .string(pool),
            "worker_send_task_events": .bool(events),
            "task_queues": .array(queues.map { .string($0) }),
            "event_serializer": "json",
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
        ]
    }
}
