import CeleryProtocol
import FnHostCore

/// Celery events and remote control over Redis, as kombu's Redis transport does them
/// (celery-protocol.md §7, §8; kombu/transport/redis.py with Celery 5.7's `fanout_prefix` and
/// `fanout_patterns` both on):
///
/// - a fanout exchange is Redis pub/sub: a message goes out with `PUBLISH /<db>.<exchange>/<rk>`
///   (`/<db>.<exchange>` when the routing key is empty), and a queue bound to it with routing
///   key `rk` receives with `PSUBSCRIBE /<db>.<exchange>[/<rk with # as *>]`; the pidbox
///   mailbox is bound with `""`, so the host subscribes to `/<db>.celery.pidbox`;
/// - a direct exchange is kombu's binding table `_kombu.binding.<exchange>` (members
///   `rk\x06\x16pattern\x06\x16queue`): a reply is `LPUSH`ed to each queue bound with its
///   routing key (the client's `<oid>.reply.celery.pidbox`);
/// - each message is kombu's JSON envelope with a base64 body, delivery mode 1.
///
/// Threading: `publish` and `reply` share one connection under a lock; `receive` owns a
/// subscriber connection and is called from one thread.
public final class RedisMonitoringTransport: MonitoringTransport, @unchecked Sendable {
    private let url: RedisURL
    private let publisher: RedisConnection
    private let publisherLock = ConditionLock()
    private let subscriber: RedisConnection
    private let subscriberLock = ConditionLock()
    private var subscribed: String?
    private var closed = false

    public init(url: RedisURL) {
        self.url = url
        self.publisher = RedisConnection(url: url, readTimeout: 10)
        self.subscriber = RedisConnection(url: url, readTimeout: 10)
    }

    /// kombu's `keyprefix_fanout` with the database: `/<db>.`.
    var fanoutPrefix: String { "/\(url.db)." }

    /// The pub/sub channel of a fanout message (kombu's `_get_publish_topic`).
    public func channel(exchange: String, routingKey: String) -> String {
        routingKey.isEmpty ? fanoutPrefix + exchange : fanoutPrefix + exchange + "/" + routingKey
    }

    /// kombu's envelope for a transient JSON message on `exchange`.
    public static func envelope(_ message: MonitoringMessage, exchange: String) -> [UInt8] {
        let body = message.wireBody
        let properties: JSONObject = [
            "delivery_mode": 1,
            "delivery_info": .object(["exchange": .string(exchange), "routing_key": .string(message.routingKey)]),
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": .string(UUID4.make()),
        ]
        let document: JSONObject = [
            "body": .string(String(decoding: Base64.encode(body), as: UTF8.self)),
            "content-encoding": "utf-8",
            "content-type": .string(message.contentType),
            "headers": .object(message.headers),
            "properties": .object(properties),
        ]
        return JSONWriter.bytes(.object(document))
    }

    /// The message inside a kombu envelope (base64 or plain JSON body); `nil` if it is not one.
    public static func message(fromEnvelope bytes: [UInt8]) -> MonitoringMessage? {
        guard let parsed = try? JSONParser.parse(bytes), case .object(let document) = parsed,
              case .string(let text)? = document["body"] else { return nil }
        let properties = document["properties"]
        let raw: [UInt8]
        if properties?["body_encoding"]?.stringValue == "base64" {
            guard let decoded = Base64.decode(text.utf8) else { return nil }
            raw = decoded
        } else {
            raw = Array(text.utf8)
        }
        let routingKey = properties?["delivery_info"]?["routing_key"]?.stringValue ?? ""
        if document["content-type"]?.stringValue == SecurePayload.contentType {
            return MonitoringMessage(routingKey: routingKey, headers: document["headers"]?.objectValue ?? [:], signedBody: raw)
        }
        guard let body = try? JSONParser.parse(raw) else { return nil }
        return MonitoringMessage(routingKey: routingKey, headers: document["headers"]?.objectValue ?? [:], body: body)
    }

    public func publish(_ messages: [MonitoringMessage], toFanout exchange: String) throws {
        guard !messages.isEmpty else { return }
        let commands = messages.map { m in
            [Array("PUBLISH".utf8), Array(channel(exchange: exchange, routingKey: m.routingKey).utf8), Self.envelope(m, exchange: exchange)]
        }
        try publisherLock.withLock {
            for reply in try publisher.pipeline(commands) {
                if case .error(let e) = reply { throw RedisError(description: "publishing to \(exchange) failed: \(e)", connectionLost: false) }
            }
        }
    }

    public func reply(_ message: MonitoringMessage, throughDirect exchange: String) throws {
        let payload = Self.envelope(message, exchange: exchange)
        try publisherLock.withLock {
            guard case .array(let members) = try publisher.command([Array("SMEMBERS".utf8), Array("_kombu.binding.\(exchange)".utf8)]) else { return }
            let sep = Array(RedisBroker.separator.utf8)
            var commands: [[[UInt8]]] = []
            for member in members.compactMap(\.bytes) {
                let parts = Self.split(member, by: sep)
                guard parts.count == 3, String(decoding: parts[0], as: UTF8.self) == message.routingKey else { continue }
                commands.append([Array("LPUSH".utf8), parts[2], payload])
            }
            guard !commands.isEmpty else { return }
            for reply in try publisher.pipeline(commands) {
                if case .error(let e) = reply { throw RedisError(description: "replying through \(exchange) failed: \(e)", connectionLost: false) }
            }
        }
    }

    static func split(_ bytes: [UInt8], by sep: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if i + sep.count <= bytes.count, Array(bytes[i..<(i + sep.count)]) == sep {
                parts.append(current)
                current = []
                i += sep.count
            } else {
                current.append(bytes[i])
                i += 1
            }
        }
        parts.append(current)
        return parts
    }

    public func receive(fromFanout exchange: String, queue: String, timeout: Double) throws -> [MonitoringMessage] {
        try subscriberLock.withLock {
            if closed { return [] }
            let pattern = channel(exchange: exchange, routingKey: "")
            if subscribed != pattern {
                guard case .array = try subscriber.command([Array("PSUBSCRIBE".utf8), Array(pattern.utf8)]) else {
                    subscriber.disconnect()
                    throw RedisError(description: "PSUBSCRIBE \(pattern) failed", connectionLost: true)
                }
                subscribed = pattern
            }
            var messages: [MonitoringMessage] = []
            var wait = timeout
            do {
                while let reply = try subscriber.readPushed(timeout: wait) {
                    wait = 0
                    // ["pmessage", pattern, channel, data]
                    guard case .array(let items) = reply, items.count == 4, items[0].bytes == Array("pmessage".utf8),
                          let data = items[3].bytes, let message = Self.message(fromEnvelope: data) else { continue }
                    messages.append(message)
                }
            } catch {
                subscribed = nil
                throw error
            }
            return messages
        }
    }

    public func close() {
        publisherLock.withLock { publisher.disconnect() }
        subscriberLock.withLock {
            closed = true
            subscriber.disconnect()
        }
    }
}

/// Queue lengths and store depths on Redis for `/metrics`, `/healthz` and `stats`, over a
/// connection of its own.
public final class RedisInspection: BrokerInspection, @unchecked Sendable {
    private let url: RedisURL
    private let connection: RedisConnection
    private let lock = ConditionLock()

    public init(url: RedisURL) {
        self.url = url
        self.connection = RedisConnection(url: url, readTimeout: 5)
    }

    public func queueLengths(_ queues: [String]) throws -> [String: Int] {
        let keys = queues.flatMap { q in RedisBroker.priorityBuckets.map { (q, RedisBroker.key(queue: q, bucket: $0)) } }
        let replies = try lock.withLock { try connection.pipeline(keys.map { [Array("LLEN".utf8), Array($0.1.utf8)] }) }
        var lengths: [String: Int] = [:]
        for q in queues { lengths[q] = 0 }
        for (key, reply) in zip(keys, replies) {
            if case .integer(let n) = reply { lengths[key.0, default: 0] += Int(n) }
        }
        return lengths
    }

    private func count(_ command: String, _ key: String) throws -> Int {
        let reply = try lock.withLock { try connection.command([Array(command.utf8), Array(key.utf8)]) }
        if case .integer(let n) = reply { return Int(n) }
        if case .error(let e) = reply { throw RedisError(description: "\(command) \(key) failed: \(e)", connectionLost: false) }
        return 0
    }

    public func deadLetterDepth() throws -> Int { try count("LLEN", RedisBroker.deadLetterKey) }
    public func delayedDepth() throws -> Int { try count("ZCARD", RedisBroker.delayedKey) }
    public var reconnects: Int { RedisConnection.reconnects }

    public var connectionInfo: JSONObject {
        [
            "hostname": .string(url.host), "userid": url.username.map { .string($0) } ?? .null,
            "virtual_host": .string(String(url.db)), "port": .int(Int64(url.port)), "insist": false, "ssl": .bool(url.tls != nil),
            "transport": "redis", "connect_timeout": 5, "transport_options": .object([:]), "login_method": .null,
            "uri_prefix": .null, "heartbeat": .null, "failover_strategy": "round-robin", "alternates": .array([]),
        ]
    }
}
