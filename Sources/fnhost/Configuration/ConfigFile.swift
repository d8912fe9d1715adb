import CeleryProtocol
import FnHostAMQP
import FnHostCore
import FnHostYAML

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost.yml`: Celery's setting names, plus per-task option overrides under `tasks:`.
///
/// ```yaml
/// broker_url: redis://127.0.0.1:6379/0
/// result_backend: redis://127.0.0.1:6379/1
/// worker_concurrency: 4
/// worker_prefetch_multiplier: 4
/// result_expires: 86400
/// task_queues: [celery]
/// broker_transport_options: { visibility_timeout: 3600 }
/// worker_max_tasks_per_child: 1000
/// worker_max_memory_per_child: 200000   # KB of resident memory
/// worker_max_message_size: 67108864      # bytes; larger messages are dead-lettered unread
/// tasks:
///   math.add: { queue: arith, concurrency: 2 }
/// ```
struct ConfigFile {
    var brokerURL: String?
    var resultBackend: String?
    var concurrency: Int?
    var prefetchMultiplier: Int?
    var resultExpires: Int?
    var queues: [String] = []
    var functionsDirectory: String?
    var hostname: String?
    /// `worker_pool`: prefork or threads.
    var pool: String?
    /// `worker_deduplicate_successful_tasks` (default true: unlike Celery, where it is off).
    var deduplicateSuccessfulTasks = true
    /// kombu's `visibility_timeout` (seconds), from `broker_transport_options`.
    var visibilityTimeout: Double?
    /// fnhost's Redis delivery lease (seconds), `broker_transport_options.fnhost_lease_timeout`.
    var leaseTimeout: Double?
    /// Tasks a worker process runs before it is replaced (0: no limit).
    var maxTasksPerChild: Int?
    /// Kilobytes of resident memory after which a worker process is replaced (0: no limit).
    var maxMemoryPerChild: Int?
    /// `worker_max_message_size`: bytes; a larger message is dead-lettered without being read.
    var maxMessageSize: Int?
    var tasks: [String: JSONObject] = [:]
    /// RabbitMQ: `broker_heartbeat`, `broker_use_ssl`, `task_queue_max_priority`,
    /// `task_default_queue_type`, `result_persistent`.
    var amqp = Transports.AMQPSettings()
    /// `broker_use_ssl` as given (Redis: the TLS settings of a `rediss://` broker; RabbitMQ: `amqp.tls`).
    var brokerUseSSL: TLSOptions?
    /// `redis_backend_use_ssl`: the TLS settings of a `rediss://` result backend.
    var redisBackendUseSSL: TLSOptions?
    /// `task_routes`: task name or glob pattern -> queue (exact names win; patterns are tried by name order).
    var taskRoutes: [(pattern: String, queue: String)] = []
    /// `worker_send_task_events` (`-E`): send task events from the start.
    var sendTaskEvents: Bool?
    /// Message signing: `security_key`, `security_key_password`, `security_certificate`,
    /// `security_cert_store`, `security_digest`, `task_serializer`, `result_serializer`.
    var security = SecurityConfig()
    /// Settings recognized but not implemented yet in this version (warned about, ignored).
    var ignored: [String] = []

    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    static let plannedKeys: Set<String> = [
        "task_acks_late",
    ]

    /// Loads and validates `path`; every error names the file, and the line where YAML knows it.
    static func load(_ path: String) throws(Error) -> ConfigFile {
        guard let text = readText(path) else { throw Error(description: "\(path): cannot read the file") }
        let document: YAMLNode?
        do { document = try YAMLReader.read(text) } catch {
            throw Error(description: "\(path):\(error.line): invalid YAML: \(error.problem)")
        }
        guard let document else { return ConfigFile() }
        if let key = document.firstDuplicateKey {
            throw Error(description: "\(path):\(key.line): `\(key.text)` appears twice")
        }
        guard case .object(let root) = toJSON(document) else { throw Error(description: "\(path): the top level must be a mapping of settings") }
        var config = ConfigFile()
        func fail(_ key: String, _ message: String) -> Error { Error(description: "\(path): \(key): \(message)") }
        for (key, value) in root.entries {
            switch key {
            case "broker_url":
                guard let s = value.stringValue else { throw fail(key, "must be a URL string") }
                config.brokerURL = s
            case "result_backend":
                guard let s = value.stringValue else { throw fail(key, "must be a URL string") }
                config.resultBackend = s
            case "worker_concurrency":
                guard let n = value.intValue, n >= 1, n <= 1024 else { throw fail(key, "must be an integer from 1 to 1024") }
                config.concurrency = Int(n)
            case "worker_prefetch_multiplier":
                guard let n = value.intValue, n >= 1, n <= 1000 else { throw fail(key, "must be an integer from 1 to 1000") }
                config.prefetchMultiplier = Int(n)
            case "result_expires":
                guard let n = value.intValue, n >= 0 else { throw fail(key, "must be a non-negative number of seconds") }
                config.resultExpires = Int(n)
            case "task_queues":
                guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue?.isEmpty == false }) else {
                    throw fail(key, "must be a list of queue names")
                }
                config.queues = items.compactMap(\.stringValue)
            case "functions_dir":
                guard let s = value.stringValue else { throw fail(key, "must be a directory path") }
                config.functionsDirectory = s
            case "worker_max_tasks_per_child":
                guard let n = value.intValue, n >= 0 else { throw fail(key, "must be a non-negative number of tasks (0: no limit)") }
                config.maxTasksPerChild = Int(n)
            case "worker_max_memory_per_child":
                guard let n = value.intValue, n >= 0 else { throw fail(key, "must be a non-negative number of kilobytes (0: no limit)") }
                config.maxMemoryPerChild = Int(n)
            case "worker_max_message_size":
                guard let n = value.intValue, n >= 1024, n <= Int64(Int32.max) else { throw fail(key, "must be a number of bytes from 1024 to 2147483647") }
                config.maxMessageSize = Int(n)
            case "worker_deduplicate_successful_tasks":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                config.deduplicateSuccessfulTasks = b
            case "worker_pool":
                guard let s = value.stringValue else { throw fail(key, "must be prefork or threads") }
                config.pool = s
            case "worker_hostname":
                guard let s = value.stringValue else { throw fail(key, "must be a string") }
                config.hostname = s
            case "broker_transport_options":
                guard case .object(let options) = value else { throw fail(key, "must be a mapping") }
                for (name, option) in options.entries {
                    guard name == "visibility_timeout" || name == "fnhost_lease_timeout" else {
                        config.ignored.append("broker_transport_options.\(name)")
                        continue
                    }
                    guard let seconds = option.doubleValue, seconds > 0 else { throw fail("broker_transport_options.\(name)", "must be a positive number of seconds") }
                    if name == "visibility_timeout" { config.visibilityTimeout = seconds } else { config.leaseTimeout = seconds }
                }
            case "broker_heartbeat":
                guard let n = value.intValue, n >= 0, n <= 65535 else { throw fail(key, "must be 0 (off) or a number of seconds") }
                config.amqp.heartbeat = Int(n)
            case "broker_use_ssl":
                let tls = try tlsOptions(value, key: key, fail: fail)
                config.amqp.tls = tls
                config.brokerUseSSL = tls
            case "redis_backend_use_ssl":
                config.redisBackendUseSSL = try tlsOptions(value, key: key, fail: fail)
            case "task_queue_max_priority":
                guard let n = value.intValue, (1...255).contains(n) else { throw fail(key, "must be a priority from 1 to 255") }
                config.amqp.topology.maxPriority = Int(n)
            case "task_default_queue_type":
                guard let s = value.stringValue, s == "classic" || s == "quorum" else { throw fail(key, "must be classic or quorum") }
                config.amqp.topology.queueType = s
            case "result_persistent":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                config.amqp.resultPersistent = b
            case "task_routes":
                guard case .object(let routes) = value else { throw fail(key, "must map task names (or glob patterns) to a queue name or {queue: name}") }
                for (name, route) in routes.entries {
                    guard let queue = route.stringValue ?? route["queue"]?.stringValue, !queue.isEmpty else {
                        throw fail("task_routes.\(name)", "must be a queue name or {queue: name}")
                    }
                    config.taskRoutes.append((name, queue))
                }
            case "worker_send_task_events":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                config.sendTaskEvents = b
            case "security_key", "security_key_password", "security_certificate", "security_cert_store", "security_digest",
                 "task_serializer", "result_serializer":
                // The password's value never reaches an error message.
                guard let s = value.stringValue, !s.isEmpty else { throw fail(key, key == "security_key_password" ? "must be a non-empty string" : "must be a non-empty string (\(JSONWriter.string(value).prefix(40)))") }
                try config.security.set(key, s, fail: fail)
            case "tasks":
                guard case .object(let tasks) = value else { throw fail(key, "must map task names to their options") }
                for (name, options) in tasks.entries {
                    guard case .object(let o) = options else { throw fail("tasks.\(name)", "must be a mapping of options") }
                    config.tasks[name] = o
                }
            default:
                if plannedKeys.contains(key) {
                    config.ignored.append(key)
                } else {
                    throw fail(key, "unknown setting")
                }
            }
        }
        return config
    }

    /// `broker_use_ssl` / `redis_backend_use_ssl` with Python's keys: `true`, or a mapping of
    /// `ca_certs`, `certfile`, `keyfile`, `cert_reqs` (`CERT_REQUIRED`, the default, or
    /// `CERT_NONE`), `server_hostname`, each also with redis-py's `ssl_` prefix.
    private static func tlsOptions(_ value: JSON, key: String, fail: (String, String) -> Error) throws(Error) -> TLSOptions {
        if value.boolValue == true { return TLSOptions() }
        guard case .object(let o) = value else { throw fail(key, "must be true or a mapping (ca_certs, certfile, keyfile, cert_reqs)") }
        var tls = TLSOptions()
        for (name, option) in o.entries {
            guard let text = option.stringValue ?? option.intValue.map(String.init) else { throw fail("\(key).\(name)", "must be a string") }
            do { try tls.set(name, to: text) } catch { throw fail("\(key).\(name)", error.description) }
        }
        return tls
    }

    /// The first of `names` set (non-empty) in the environment.
    static func environment(_ names: [String]) -> String? {
        for n in names { if let v = getenv(n), v.pointee != 0 { return String(cString: v) } }
        return nil
    }

    /// The broker URL: the flag, else the environment, else this file, else local Redis.
    func brokerURL(flag: String?) -> String {
        flag ?? Self.environment(["FNHOST_BROKER_URL", "CELERY_BROKER_URL"]) ?? brokerURL ?? "redis://127.0.0.1:6379/0"
    }

    static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A YAML value as JSON, each mapping's keys in name order (as settings were always read).
    static func toJSON(_ node: YAMLNode) -> JSON {
        switch node {
        case .scalar(let scalar): scalar.json
        case .sequence(let items, _): .array(items.map(toJSON))
        case .mapping(let entries, _):
            .object(JSONObject(entries.map { (key: $0.key.scalar?.text ?? "", value: toJSON($0.value)) }.sorted { $0.key < $1.key }))
        }
    }
}
