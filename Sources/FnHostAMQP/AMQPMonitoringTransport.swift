import CeleryProtocol
import FnHostCore

/// Celery events and remote control over RabbitMQ (celery-protocol.md §3.1, §7, §8), with the
/// exchanges Celery declares: `celeryev` (topic, durable) for events, `celery.pidbox` (fanout,
/// transient) for control requests, `reply.celery.pidbox` (direct, transient) for replies.
/// The host's mailbox `<nodename>.celery.pidbox` is declared as Celery 5.7 declares it
/// (auto-delete, exclusive, `x-message-ttl` 300 s, `x-expires` 10 s) and consumed without
/// acknowledgements, as kombu's pidbox does.
///
/// Messages are transient (delivery mode 1), JSON, at-most-once: no publisher confirms here,
/// so monitoring never slows the task path. Publishing has a connection of its own (under a
/// lock); receiving another, owned by the one thread that calls `receive`.
public final class AMQPMonitoringTransport: MonitoringTransport, @unchecked Sendable {
    private let publisher: AMQPConnection
    private let publisherLock = ConditionLock()
    private var declaredExchanges: Set<String> = []
    private let subscriber: AMQPConnection
    private let subscriberLock = ConditionLock()
    private var consuming: String?
    private var closed = false

    public init(url: AMQPURL, tls: TLSOptions, heartbeat: Int) {
        // The publishing side idles between events: no heartbeats, reopened on the next publish
        // when the broker dropped it.
        publisher = AMQPConnection(url: url, tls: tls, heartbeat: 0, name: "fnhost events")
        subscriber = AMQPConnection(url: url, tls: tls, heartbeat: heartbeat, name: "fnhost pidbox")
    }

    /// The type and durability Celery gives each exchange (a different declaration is a 406).
    static func exchangeKind(_ name: String) -> (type: String, durable: Bool) {
        if name == "celeryev" { return ("topic", true) }
        if name.hasPrefix("reply.") { return ("direct", false) }
        return ("fanout", false)
    }

    private func declare(_ exchange: String, on connection: AMQPConnection) throws {
        guard !declaredExchanges.contains(exchange) else { return }
        let kind = Self.exchangeKind(exchange)
        try connection.declareExchange(exchange, type: kind.type, durable: kind.durable)
        declaredExchanges.insert(exchange)
    }

    static func properties(_ message: MonitoringMessage) -> AMQPProperties {
        AMQPProperties(contentType: message.contentType, contentEncoding: "utf-8", headers: message.headers, deliveryMode: 1, priority: 0)
    }

    private func send(_ messages: [MonitoringMessage], exchange: String) throws {
        try publisherLock.withLock {
            do {
                if !publisher.isOpen {
                    declaredExchanges = []
                    try publisher.open()
                }
                try declare(exchange, on: publisher)
                for m in messages {
                    try publisher.publish(exchange: exchange, routingKey: m.routingKey, properties: Self.properties(m), body: m.wireBody)
                }
            } catch {
                if (error as? AMQPError)?.connectionLost ?? true { publisher.close() }
                throw error
            }
        }
    }

    public func publish(_ messages: [MonitoringMessage], toFanout exchange: String) throws {
        guard !messages.isEmpty else { return }
        try send(messages, exchange: exchange)
    }

    public func reply(_ message: MonitoringMessage, throughDirect exchange: String) throws {
        try send([message], exchange: exchange)
    }

    public func receive(fromFanout exchange: String, queue: String, timeout: Double) throws -> [MonitoringMessage] {
        try subscriberLock.withLock {
            if closed { return [] }
            do {
                if consuming != queue || !subscriber.isOpen {
                    try subscriber.open()
                    let kind = Self.exchangeKind(exchange)
                    try subscriber.declareExchange(exchange, type: kind.type, durable: kind.durable)
                    try subscriber.declareQueue(queue, durable: false, exclusive: true, autoDelete: true,
                                                arguments: ["x-message-ttl": 300_000, "x-expires": 10_000])
                    try subscriber.bind(queue: queue, exchange: exchange, routingKey: "")
                    try subscriber.consume(queue: queue, consumerTag: queue, noAck: true)
                    consuming = queue
                }
                var messages: [MonitoringMessage] = []
                var wait = timeout
                while true {
                    guard case .delivery(let incoming) = try subscriber.next(timeout: wait) else { break }
                    wait = 0
                    if incoming.properties.contentType == SecurePayload.contentType {
                        messages.append(MonitoringMessage(routingKey: incoming.routingKey, headers: incoming.properties.headers ?? [:],
                                                          signedBody: incoming.body))
                    } else if let body = try? JSONParser.parse(incoming.body) {
                        messages.append(MonitoringMessage(routingKey: incoming.routingKey, headers: incoming.properties.headers ?? [:], body: body))
                    }
                }
                return messages
            } catch {
                consuming = nil
                subscriber.close()
                throw error
            }
        }
    }

    public func close() {
        publisherLock.withLock { publisher.close() }
        subscriberLock.withLock {
            closed = true
            subscriber.close()
        }
    }
}

/// Queue lengths and store depths on RabbitMQ for `/metrics`, `/healthz` and `stats`: passive
/// declarations on a connection of its own.
public final class AMQPInspection: BrokerInspection, @unchecked Sendable {
    private let broker: AMQPBroker
    private let connection: AMQPConnection
    private let lock = ConditionLock()

    public init(broker: AMQPBroker) {
        self.broker = broker
        self.connection = AMQPConnection(url: broker.settings.url, tls: broker.settings.tls, heartbeat: 0, name: "fnhost inspection")
    }

    /// Ready messages in `queue`; 0 when it does not exist.
    private func depth(_ queue: String) throws -> Int {
        if !connection.isOpen { try connection.open() }
        do {
            return try connection.messageCount(queue: queue)
        } catch {
            if error.isNotFound && !error.connectionLost { return 0 }
            throw error
        }
    }

    public func queueLengths(_ queues: [String]) throws -> [String: Int] {
        try lock.withLock {
            var lengths: [String: Int] = [:]
            for q in queues { lengths[q] = try depth(q) }
            return lengths
        }
    }

    public func deadLetterDepth() throws -> Int {
        try lock.withLock { try depth(AMQPTopology.deadLetterQueue) }
    }

    public func delayedDepth() throws -> Int {
        try lock.withLock { try AMQPTopology.delayLevels.reduce(0) { $0 + (try depth(AMQPTopology.delayQueue(level: $1))) } }
    }

    public var reconnects: Int { broker.reconnectCount }

    public var connectionInfo: JSONObject {
        let url = broker.settings.url
        return [
            "hostname": .string(url.host), "userid": .string(url.username), "virtual_host": .string(url.virtualHost),
            "port": .int(Int64(url.port)), "insist": false, "ssl": .bool(url.useTLS), "transport": "amqp", "connect_timeout": 4,
            "transport_options": .object([:]), "login_method": "PLAIN", "uri_prefix": .null,
            "heartbeat": .double(Double(broker.settings.heartbeat)), "failover_strategy": "round-robin", "alternates": .array([]),
        ]
    }
}
