import CeleryProtocol
import FnHostCore
import Logging

/// The publishing connection: every message fnhost sends (results on rpc://, retried and
/// follow-up tasks, the delayed store, the dead-letter queue) goes through it, with publisher
/// confirms, so a publish is never assumed: `publish` returns only once the broker has it.
///
/// Threading: any thread; calls are serialized by a lock. The connection opens lazily and again
/// after any error (the caller's retry reconnects); a timer services heartbeats while it idles.
public final class AMQPPublisher: @unchecked Sendable {
    /// One message to publish.
    public struct Message {
        public var exchange: String
        public var routingKey: String
        public var properties: AMQPProperties
        public var body: [UInt8]

        public init(exchange: String = "", routingKey: String, properties: AMQPProperties, body: [UInt8]) {
            self.exchange = exchange
            self.routingKey = routingKey
            self.properties = properties
            self.body = body
        }
    }

    private let connection: AMQPConnection
    private let topology: AMQPTopology
    private let logger: Logger
    private let lock = ConditionLock()
    private var declaredQueues: Set<String> = []
    private var declaredDelayLevels: Set<Int> = []
    private var closed = false

    public init(url: AMQPURL, tls: TLSOptions, heartbeat: Int, topology: AMQPTopology, logger: Logger) {
        self.connection = AMQPConnection(url: url, tls: tls, heartbeat: heartbeat, name: "fnhost publisher")
        self.topology = topology
        self.logger = logger
        if heartbeat > 0 {
            let interval = max(1, Double(heartbeat) / 4)
            startDetachedThread(name: "fnhost-amqp-heartbeat") { [weak self] in
                while let self, !self.isClosed {
                    sleepSeconds(interval)
                    self.lock.withLock {
                        guard self.connection.isOpen else { return }
                        do { try self.connection.serviceHeartbeats() } catch {
                            self.logger.warning("publishing connection lost while idle (reopened on next use): \(error)")
                        }
                    }
                }
            }
        }
    }

    private var isClosed: Bool { lock.withLock { closed } }

    private func ready() throws(AMQPError) {
        if closed { throw AMQPError("the publisher is closed") }
        if !connection.isOpen {
            declaredQueues = []
            declaredDelayLevels = []
            try connection.open(confirms: true)
        }
    }

    /// Publishes `messages` in order and waits for the broker to confirm them all.
    public func publish(_ messages: [Message]) throws {
        guard !messages.isEmpty else { return }
        try lock.withLock {
            try ready()
            for m in messages {
                try connection.publish(exchange: m.exchange, routingKey: m.routingKey, properties: m.properties, body: m.body)
            }
            try connection.waitForConfirms()
        }
    }

    /// Publishes to task queue `queue` through the default exchange, declaring the queue (as
    /// Celery would, once per connection) first, and waits for the confirm.
    public func publish(toQueue queue: String, properties: AMQPProperties, body: [UInt8]) throws {
        try lock.withLock {
            try ready()
            try declareTaskQueue(queue)
            try connection.publish(exchange: "", routingKey: queue, properties: properties, body: body)
            try connection.waitForConfirms()
        }
    }

    /// Declares a task queue as Celery does (lock held). A declaration the broker refuses with
    /// 406 (its queue has other arguments) is reported with both sides and retried passively.
    private func declareTaskQueue(_ queue: String) throws(AMQPError) {
        guard !declaredQueues.contains(queue) else { return }
        try AMQPBroker.declareTaskQueue(queue, on: connection, topology: topology, logger: logger)
        declaredQueues.insert(queue)
    }

    /// Puts messages in the delayed store, each until its time, and waits for the confirms.
    public func delay(_ items: [(message: Message, seconds: Double)]) throws {
        guard !items.isEmpty else { return }
        try lock.withLock {
            try ready()
            for item in items {
                let level = AMQPTopology.delayLevel(forSeconds: item.seconds)
                if !declaredDelayLevels.contains(level) {
                    let name = AMQPTopology.delayQueue(level: level)
                    try connection.declareExchange(AMQPTopology.delayExchange(level: level), type: "fanout", durable: true)
                    try connection.declareQueue(name, durable: true, arguments: AMQPTopology.delayQueueArguments(level: level))
                    try connection.bind(queue: name, exchange: AMQPTopology.delayExchange(level: level), routingKey: "")
                    declaredDelayLevels.insert(level)
                }
                try declareTaskQueue(item.message.routingKey)
                try connection.publish(exchange: AMQPTopology.delayExchange(level: level), routingKey: item.message.routingKey,
                                       properties: item.message.properties, body: item.message.body)
            }
            try connection.waitForConfirms()
        }
    }

    /// Runs `body` with the open connection (lock held): for the dead-letter tools.
    public func withConnection<T>(_ body: (AMQPConnection) throws -> T) throws -> T {
        try lock.withLock {
            try ready()
            return try body(connection)
        }
    }

    public func close() {
        lock.withLock {
            closed = true
            connection.close()
        }
    }
}
