import CeleryProtocol
import FnHostAMQP
import FnHostCore
import FnHostSecurity

extension Serve {
    /// What the `conf` remote-control command answers: the host's settings under Celery's
    /// names, with every password masked (a secret never reaches a reply).
    static func celeryConf(broker: String, backend: String, concurrency: Int, prefetch: Int, maxTasks: Int?, maxMemory: Int?,
                           pool: String, queues: [String], events: Bool, security: SecuritySettings? = nil, signResults: Bool = false,
                           visibilityTimeout: Double? = nil, leaseTimeout: Double? = nil) -> JSONObject {
        var conf: JSONObject = [
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
            "broker_transport_options": .object(transportOptions(broker: broker, visibilityTimeout: visibilityTimeout, leaseTimeout: leaseTimeout)),
        ]
        if let security {
            // As Celery's `conf` reply does for every *KEY*/*PASS* setting: masked. The key
            // file's path is masked too; its contents are never read outside FnHostSecurity.
            conf["task_serializer"] = "auth"
            conf["accept_content"] = ["auth"]
            conf["result_serializer"] = .string(signResults ? "auth" : "json")
            conf["security_key"] = "********"
            if security.keyPassword != nil { conf["security_key_password"] = "********" }
            conf["security_certificate"] = .string(security.certificate)
            conf["security_cert_store"] = .string(security.certStore)
            conf["security_digest"] = .string(security.digest)
        }
        return conf
    }

    /// `broker_transport_options` as the host runs them: on Redis, kombu's `visibility_timeout`
    /// and fnhost's `fnhost_lease_timeout` (defaults included); nothing on RabbitMQ.
    static func transportOptions(broker: String, visibilityTimeout: Double?, leaseTimeout: Double?) -> JSONObject {
        guard !AMQPURL.isAMQP(broker) else { return [:] }  // the broker `Transports.make` picks
        func seconds(_ value: Double) -> JSON { value == value.rounded() && abs(value) < 1e15 ? .int(Int64(value)) : .double(value) }
        var options: JSONObject = [:]
        if let visibilityTimeout { options["visibility_timeout"] = seconds(visibilityTimeout) }
        if let leaseTimeout { options["fnhost_lease_timeout"] = seconds(leaseTimeout) }
        return options
    }
}
