import CeleryProtocol

/// A task's options, with Celery's names (plugin-abi.md, "Task options").
///
/// Parsed from the plugin's `options_json`, then overridden by the deployment's config
/// (`tasks:` in fnhost.yml). Parsing validates every key and value: an unknown key or a bad
/// value is an error that names the key. Every option takes effect.
public struct TaskOptions: Sendable, Equatable {
    /// The queue the task is consumed from; `nil` means the task's own name.
    public var queue: String?
    /// The most tasks of this function that run at once; `nil` means the host's `--concurrency`.
    public var concurrency: Int?
    /// Retries allowed before `MaxRetriesExceededError`; `nil` means unlimited.
    public var maxRetries: Int? = 3
    /// Seconds before a retry when the task gives no countdown.
    public var defaultRetryDelay: Double = 180
    /// Retry on every `FNHOST_ERROR`.
    public var autoretry = false
    /// Exponential backoff base in seconds (`true` is 1); `nil` disables backoff.
    public var retryBackoff: Double?
    /// Cap of the backoff, seconds.
    public var retryBackoffMax: Double = 600
    /// Full jitter on backoff countdowns.
    public var retryJitter = true
    /// Hard and soft time limits in seconds.
    public var timeLimit: Double?
    public var softTimeLimit: Double?
    /// A rate limit such as `10/s`, `100/m`, `1000/h`, kept as written.
    public var rateLimit: String?
    /// Acknowledge after the outcome is settled (default) rather than before running.
    public var acksLate = true
    /// With `acksLate`, give the message back when the worker process dies, instead of failing it.
    public var rejectOnWorkerLost = false
    /// Store no result.
    public var ignoreResult = false
    /// Store (and, on rpc://, send) STARTED when a worker process takes the task, as Celery's
    /// `track_started` does.
    public var trackStarted = false
    /// `memory_limit`: bytes of address space a task may add to its worker process
    /// (`RLIMIT_AS` while it runs); past it allocations fail and the task fails with
    /// `MemoryError`. Written `256MB`, `1GB`, `512KB`, or a number of kilobytes. `nil`: no limit.
    public var memoryLimit: Int?

    public init() {}

    /// The option names accepted, as Celery spells them.
    public static let knownKeys: [String] = [
        "queue", "concurrency", "max_retries", "default_retry_delay", "autoretry", "retry_backoff",
        "retry_backoff_max", "retry_jitter", "time_limit", "soft_time_limit", "rate_limit", "acks_late",
        "reject_on_worker_lost", "ignore_result", "track_started", "memory_limit",
    ]

    /// Parses a size as `memory_limit` takes it: `256MB`, `1GB`, `512KB`, `64M` (1024-based),
    /// or a bare number of kilobytes (as `worker_max_memory_per_child`). Nil when invalid.
    public static func parseSize(_ value: JSON) -> Int? {
        if let n = value.intValue { return n > 0 && n < Int64(Int.max / 1024) ? Int(n) * 1024 : nil }
        guard var text = value.stringValue?.filter({ $0 != " " }).uppercased(), !text.isEmpty else { return nil }
        if text.hasSuffix("IB") { text = String(text.dropLast(2)) + "B" }
        let units: [(String, Int)] = [("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        var multiplier = 1024
        for (suffix, m) in units where text.hasSuffix(suffix) {
            text = String(text.dropLast(suffix.count))
            multiplier = m
            break
        }
        guard let n = Int(text), n > 0, n <= Int.max / multiplier else { return nil }
        return n * multiplier
    }

    /// Why options were refused; the message names the key.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let key: String
        public let message: String
        public var description: String { "option '\(key)': \(message)" }
    }

    /// Parses `options_json` text (empty or `null` means defaults).
    public static func parse(json text: String?) throws(Error) -> TaskOptions {
        var options = TaskOptions()
        guard let text, !text.allSatisfy({ $0 == " " || $0 == "\n" }) else { return options }
        let value: JSON
        do { value = try JSONParser.parse(text) } catch {
            throw Error(key: "options_json", message: "not valid JSON (\(error))")
        }
        switch value {
        case .null: return options
        case .object(let object): try options.apply(object)
        default: throw Error(key: "options_json", message: "must be a JSON object, not \(value.typeName)")
        }
        return options
    }

    /// Applies the keys of `object` over these options, validating each.
    public mutating func apply(_ object: JSONObject) throws(Error) {
        for (key, value) in object.entries {
            func fail(_ message: String) -> Error { Error(key: key, message: message) }
            func bool() throws(Error) -> Bool {
                guard let b = value.boolValue else { throw fail("must be true or false, not \(value.typeName)") }
                return b
            }
            func seconds(allowNull: Bool, allowZero: Bool = false) throws(Error) -> Double? {
                if value.isNull, allowNull { return nil }
                guard let d = value.doubleValue, d.isFinite, allowZero ? d >= 0 : d > 0 else {
                    throw fail("must be a \(allowZero ? "non-negative" : "positive") number of seconds\(allowNull ? " or null" : "")")
                }
                return d
            }
            switch key {
            case "queue":
                guard let q = value.stringValue, !q.isEmpty, q.utf8.count <= 255 else { throw fail("must be a non-empty string") }
                queue = q
            case "concurrency":
                guard let n = value.intValue, n >= 1, n <= 10_000 else { throw fail("must be an integer from 1 to 10000") }
                concurrency = Int(n)
            case "max_retries":
                if value.isNull { maxRetries = nil; break }
                guard let n = value.intValue, n >= 0, n <= Int64(Int32.max) else { throw fail("must be a non-negative integer or null") }
                maxRetries = Int(n)
            case "default_retry_delay": defaultRetryDelay = try seconds(allowNull: false, allowZero: true)!
            case "autoretry": autoretry = try bool()
            case "retry_backoff":
                if case .bool(let b) = value { retryBackoff = b ? 1 : nil } else { retryBackoff = try seconds(allowNull: false) }
            case "retry_backoff_max": retryBackoffMax = try seconds(allowNull: false)!
            case "retry_jitter": retryJitter = try bool()
            case "time_limit": timeLimit = try seconds(allowNull: true)
            case "soft_time_limit": softTimeLimit = try seconds(allowNull: true)
            case "rate_limit":
                if value.isNull { rateLimit = nil; break }
                if let n = value.doubleValue, n > 0 { rateLimit = "\(n)/s"; break }
                guard let text = value.stringValue, Self.isRateLimit(text) else {
                    throw fail("must look like \"10/s\", \"100/m\" or \"1000/h\"")
                }
                rateLimit = text
            case "acks_late": acksLate = try bool()
            case "reject_on_worker_lost": rejectOnWorkerLost = try bool()
            case "ignore_result": ignoreResult = try bool()
            case "track_started": trackStarted = try bool()
            case "memory_limit":
                if case .null = value { memoryLimit = nil; break }
                guard let bytes = Self.parseSize(value) else { throw fail("must be a size such as 256MB, 1GB or 512KB") }
                memoryLimit = bytes
            default:
                throw fail("unknown option (known: \(Self.knownKeys.joined(separator: ", ")))")
            }
        }
        if let soft = softTimeLimit, let hard = timeLimit, soft > hard {
            throw Error(key: "soft_time_limit", message: "must not be greater than time_limit (\(soft) > \(hard))")
        }
    }

    static func isRateLimit(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Double(parts[0]), n > 0, n.isFinite else { return false }
        return ["s", "m", "h"].contains(String(parts[1]))
    }

    /// These options as a JSON object with Celery's names (defaults included).
    public var json: JSON {
        var o: JSONObject = [:]
        if let queue { o["queue"] = .string(queue) }
        if let concurrency { o["concurrency"] = .int(Int64(concurrency)) }
        o["max_retries"] = maxRetries.map { .int(Int64($0)) } ?? .null
        o["default_retry_delay"] = .double(defaultRetryDelay)
        o["autoretry"] = .bool(autoretry)
        o["retry_backoff"] = retryBackoff.map { .double($0) } ?? .bool(false)
        o["retry_backoff_max"] = .double(retryBackoffMax)
        o["retry_jitter"] = .bool(retryJitter)
        o["time_limit"] = timeLimit.map { .double($0) } ?? .null
        o["soft_time_limit"] = softTimeLimit.map { .double($0) } ?? .null
        o["rate_limit"] = rateLimit.map { .string($0) } ?? .null
        o["acks_late"] = .bool(acksLate)
        o["reject_on_worker_lost"] = .bool(rejectOnWorkerLost)
        o["ignore_result"] = .bool(ignoreResult)
        o["track_started"] = .bool(trackStarted)
        o["memory_limit"] = memoryLimit.map { .int(Int64($0)) } ?? .null
        return .object(o)
    }
}
