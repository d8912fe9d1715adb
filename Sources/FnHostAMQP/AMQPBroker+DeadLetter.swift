import CeleryProtocol
import FnHostCore

/// The dead-letter queue on RabbitMQ: the durable queue `fnhost.dlq`, each message as it was
/// received plus `x-fnhost-*` headers (id, reason, queue, when).
///
/// `fnhost dlq` reads it with `basic.get` on a connection of its own, without acknowledging:
/// what it does not replay or purge goes back to the queue when that connection closes.
/// A replayed message is published to its queue (confirmed) before it is acknowledged here, so
/// it is never lost (a crash between the two leaves it in both places).
extension AMQPBroker: DeadLetterStore {
    static let deadLetterHeaders = ["x-fnhost-dead-letter-id", "x-fnhost-reason", "x-fnhost-queue", "x-fnhost-dead-lettered-at"]

    /// Reads every dead letter (unacknowledged), runs `body` with them, then closes the
    /// connection, which gives back whatever `body` did not acknowledge.
    private func withDeadLetters<T>(_ body: (AMQPConnection, [AMQPIncoming]) throws -> T) throws -> T {
        let connection = AMQPConnection(url: settings.url, tls: settings.tls, heartbeat: 0, name: "fnhost dlq")
        defer { connection.close() }
        try connection.open(confirms: true)
        try connection.declareQueue(AMQPTopology.deadLetterQueue, durable: true)
        var messages: [AMQPIncoming] = []
        while let m = try connection.get(queue: AMQPTopology.deadLetterQueue) { messages.append(m) }
        return try body(connection, messages)
    }

    static func entry(_ m: AMQPIncoming) -> DeadLetter? {
        guard let headers = m.properties.headers, let id = headers["x-fnhost-dead-letter-id"]?.stringValue else { return nil }
        let queue = headers["x-fnhost-queue"]?.stringValue ?? m.routingKey
        return DeadLetter(id: id, deadAt: headers["x-fnhost-dead-lettered-at"]?.stringValue.flatMap(CeleryTime.parse) ?? 0,
                          reason: headers["x-fnhost-reason"]?.stringValue ?? "", queue: queue, source: queue,
                          task: headers["task"]?.stringValue, taskId: headers["id"]?.stringValue, payload: m.body)
    }

    public func deadLetters() throws -> [(entry: DeadLetter?, raw: [UInt8])] {
        try withDeadLetters { _, messages in
            messages.map { m in
                let e = Self.entry(m)
                return (e, Array((e?.id ?? "").utf8))
            }
        }
    }

    public func replay(_ entries: [(entry: DeadLetter, raw: [UInt8])]) throws -> [String] {
        let wanted = Set(entries.map(\.entry.id))
        return try withDeadLetters { connection, messages in
            var replayed: [String] = []
            for m in messages {
                guard let e = Self.entry(m), wanted.contains(e.id) else { continue }
                var properties = m.properties
                var headers = properties.headers ?? [:]
                for name in Self.deadLetterHeaders { headers[name] = nil }
                if headers["retries"] != nil { headers["retries"] = .int(0) }
                if headers["eta"] != nil { headers["eta"] = .null }
                properties.headers = headers
                try connection.publish(exchange: "", routingKey: e.queue, properties: properties, body: m.body)
                try connection.waitForConfirms()
                try connection.ack(m.deliveryTag)
                replayed.append(e.id)
            }
            return replayed
        }
    }

    public func purge(_ raws: [[UInt8]]) throws -> Int {
        let wanted = Set(raws.map { String(decoding: $0, as: UTF8.self) })
        return try withDeadLetters { connection, messages in
            var purged = 0
            for m in messages where wanted.contains(Self.entry(m)?.id ?? "") {
                try connection.ack(m.deliveryTag)
                purged += 1
            }
            return purged
        }
    }
}
