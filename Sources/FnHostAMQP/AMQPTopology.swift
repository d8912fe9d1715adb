import CeleryProtocol

/// How fnhost declares what it consumes and publishes to, exactly as Celery declares it
/// (celery-protocol.md §3.1), so a declaration never differs from the producer's.
///
/// A task queue is durable, not exclusive, not auto-delete, with the arguments from
/// configuration (`task_queue_max_priority` gives `x-max-priority`, `task_default_queue_type:
/// quorum` gives `x-queue-type: quorum`), and bound to a durable direct exchange of its own name
/// with its name as routing key.
public struct AMQPTopology: Sendable, Equatable {
    /// `task_queue_max_priority`: `x-max-priority` on every task queue.
    public var maxPriority: Int?
    /// `task_default_queue_type`: `classic` (default) or `quorum`.
    public var queueType: String
    /// Arguments of particular queues, which replace the defaults above for them.
    public var queueArguments: [String: JSONObject]

    public init(maxPriority: Int? = nil, queueType: String = "classic", queueArguments: [String: JSONObject] = [:]) {
        self.maxPriority = maxPriority
        self.queueType = queueType
        self.queueArguments = queueArguments
    }

    /// The arguments `queue.declare` gets for task queue `queue`.
    public func arguments(for queue: String) -> JSONObject {
        if let own = queueArguments[queue] { return own }
        var args: JSONObject = [:]
        if let maxPriority { args["x-max-priority"] = .int(Int64(maxPriority)) }
        if queueType == "quorum" { args["x-queue-type"] = "quorum" }
        return args
    }

    /// Quorum queues take per-consumer QoS only (RabbitMQ refuses global QoS on them).
    public func isQuorum(_ queue: String) -> Bool {
        arguments(for: queue)["x-queue-type"]?.stringValue == "quorum"
    }

    /// The dead-letter queue: messages that cannot run, with why (durable, classic).
    public static let deadLetterQueue = "fnhost.dlq"

    /// The delayed store: level `L` holds a message 2^L seconds, then dead-letters it to the
    /// default exchange, which routes it by its own routing key (the task queue) back home.
    /// A queue-wide TTL per level keeps every level first-in first-out, so a long delay never
    /// holds a short one back (per-message TTLs expire only at the head of a queue).
    public static let delayLevels = 0...27

    public static func delayExchange(level: Int) -> String { "fnhost.delayed.\(level)" }
    public static func delayQueue(level: Int) -> String { "fnhost.delayed.\(level)" }

    public static func delayQueueArguments(level: Int) -> JSONObject {
        ["x-message-ttl": .int(Int64(1000) << Int64(level)), "x-dead-letter-exchange": ""]
    }

    /// The level to wait in for a message due in `seconds`: the longest that does not overshoot.
    public static func delayLevel(forSeconds seconds: Double) -> Int {
        guard seconds >= 2 else { return 0 }
        var level = 0
        while level < delayLevels.upperBound && Double(UInt64(1) << UInt64(level + 1)) <= seconds { level += 1 }
        return level
    }
}
