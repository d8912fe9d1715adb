#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A task's options, with Celery's names (see plugin-abi.md). nil leaves an option to its
/// default; the deployment's config overrides all of them.
///
///     try plugin.task("text.upper", options: TaskOptions(queue: "text", concurrency: 4)) { ... }
///     try plugin.task("text.upper", options: #"{"queue": "text"}"#) { ... }  // raw JSON
public struct TaskOptions: Encodable, Sendable, ExpressibleByStringLiteral {
    /// The queue to consume (default: the task's name).
    public var queue: String?
    /// How many calls of this task may run at once.
    public var concurrency: Int?
    /// Retries before the call fails with `MaxRetriesExceededError` (default 3).
    public var maxRetries: Int?
    /// Seconds before a retry when the task does not say (default 180).
    public var defaultRetryDelay: Double?
    /// Retry on every failure, not only when the task asks for it.
    public var autoretry: Bool?
    /// Exponential backoff between retries: `true`, or the base in seconds (`2`).
    public var retryBackoff: RetryBackoff?
    /// The longest backoff, in seconds (default 600).
    public var retryBackoffMax: Double?
    /// Randomize the backoff (default true).
    public var retryJitter: Bool?
    /// Hard time limit in seconds: the worker process running the call is killed.
    public var timeLimit: Double?
    /// Soft time limit in seconds: ``TaskContext/shouldStop`` becomes true.
    public var softTimeLimit: Double?
    /// At most this many calls per worker: `"10/s"`, `"100/m"`, `"1000/h"`.
    public var rateLimit: String?
    /// Acknowledge the message after the call rather than before it.
    public var acksLate: Bool?
    /// With `acksLate`: requeue the message if the worker process dies during the call.
    public var rejectOnWorkerLost: Bool?
    /// Store no result.
    public var ignoreResult: Bool?

    /// Options given as raw JSON text; when set, the fields above are ignored.
    private var rawJSON: String?

    /// Options from fields; every one defaults to nil (the host's default).
    public init(
        queue: String? = nil, concurrency: Int? = nil, maxRetries: Int? = nil,
        defaultRetryDelay: Double? = nil, autoretry: Bool? = nil, retryBackoff: RetryBackoff? = nil,
        retryBackoffMax: Double? = nil, retryJitter: Bool? = nil, timeLimit: Double? = nil,
        softTimeLimit: Double? = nil, rateLimit: String? = nil, acksLate: Bool? = nil,
        rejectOnWorkerLost: Bool? = nil, ignoreResult: Bool? = nil
    ) {
        self.queue = queue
        self.concurrency = concurrency
        self.maxRetries = maxRetries
        self.defaultRetryDelay = defaultRetryDelay
        self.autoretry = autoretry
        self.retryBackoff = retryBackoff
        self.retryBackoffMax = retryBackoffMax
        self.retryJitter = retryJitter
        self.timeLimit = timeLimit
        self.softTimeLimit = softTimeLimit
        self.rateLimit = rateLimit
        self.acksLate = acksLate
        self.rejectOnWorkerLost = rejectOnWorkerLost
        self.ignoreResult = ignoreResult
    }

    /// Options as JSON text, passed to the host unchanged: `TaskOptions(json: #"{"queue": "q"}"#)`.
    public init(json: String) {
        self.init()
        rawJSON = json
    }

    /// Options as a JSON string literal, as ``init(json:)``.
    public init(stringLiteral json: String) {
        self.init(json: json)
    }

    /// The options JSON handed to `register_task`.
    func json() throws -> String {
        if let rawJSON { return rawJSON }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    private enum CodingKeys: String, CodingKey {
        case queue, concurrency, autoretry
        case maxRetries = "max_retries"
        case defaultRetryDelay = "default_retry_delay"
        case retryBackoff = "retry_backoff"
        case retryBackoffMax = "retry_backoff_max"
        case retryJitter = "retry_jitter"
        case timeLimit = "time_limit"
        case softTimeLimit = "soft_time_limit"
        case rateLimit = "rate_limit"
        case acksLate = "acks_late"
        case rejectOnWorkerLost = "reject_on_worker_lost"
        case ignoreResult = "ignore_result"
    }
}

/// Celery's `retry_backoff`: on or off (`true`/`false`), or the base delay in seconds (`2`).
public enum RetryBackoff: Encodable, Sendable, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral
{
    /// `true` or `false`.
    case enabled(Bool)
    /// Exponential backoff starting from this many seconds.
    case base(Double)

    /// `retryBackoff: true`.
    public init(booleanLiteral value: Bool) { self = .enabled(value) }
    /// `retryBackoff: 2`.
    public init(integerLiteral value: Int) { self = .base(Double(value)) }
    /// `retryBackoff: 0.5`.
    public init(floatLiteral value: Double) { self = .base(value) }

    /// Encodes as a JSON boolean or number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .enabled(on): try container.encode(on)
        case let .base(seconds): try container.encode(seconds)
        }
    }
}
