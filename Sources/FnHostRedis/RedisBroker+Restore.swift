import CeleryProtocol
import FnHostCore

/// kombu's visibility-timeout restore (celery-protocol.md §2.6), so that deliveries left in
/// `unacked` by a host that died are redelivered even where no Python worker shares the Redis.
///
/// Every sweep takes kombu's `unacked_mutex` (so it never runs at the same time as a Python
/// worker's), reads the deliveries older than `visibility_timeout`, skips those this host holds
/// itself, and puts each back at the consuming end of its queue (`RPUSH`, marked redelivered) in
/// one atomic step that does nothing if the delivery was acknowledged meanwhile.
extension RedisBroker {
    /// Restores deliveries older than `visibilityTimeout` seconds that are not in `holding`.
    /// Returns how many were restored (0 when another worker holds the mutex).
    @discardableResult
    public func restoreTimedOut(visibilityTimeout: Double, holding: Set<String>, limit: Int = 1000) throws -> Int {
        try withControlConnection { connection in
            let token = Array(UUID4.make().utf8)
            guard case .status = try connection.command([Array("SET".utf8), Array("unacked_mutex".utf8), token,
                                                          Array("NX".utf8), Array("PX".utf8), Array("300000".utf8)]) else { return 0 }
            defer {
                _ = try? connection.evalScript(RedisScripts.releaseMutex, keys: [Array("unacked_mutex".utf8)], args: [token])
            }
            let cutoff = CeleryTime.now() - visibilityTimeout
            guard case .array(let items) = try connection.command([
                Array("ZRANGEBYSCORE".utf8), Array("unacked_index".utf8), Array("-inf".utf8), Array(String(cutoff).utf8),
                Array("LIMIT".utf8), Array("0".utf8), Array(String(limit).utf8),
            ]) else { return 0 }
            let tags = items.compactMap(\.bytes).map { String(decoding: $0, as: UTF8.self) }.filter { !holding.contains($0) }
            guard !tags.isEmpty else { return 0 }
            let values = try connection.pipeline(tags.map { [Array("HGET".utf8), Array("unacked".utf8), Array($0.utf8)] })
            var calls: [(keys: [[UInt8]], args: [[UInt8]])] = []
            for (tag, value) in zip(tags, values) {
                guard let bytes = value.bytes, Self.isUnackedEntry(bytes) else {
                    // Unreadable bookkeeping: drop the index entry so it is not retried forever.
                    _ = try connection.pipeline([[Array("ZREM".utf8), Array("unacked_index".utf8), Array(tag.utf8)]])
                    continue
                }
                guard let entry = try restorable(bytes, connection: connection) else { continue }
                calls.append((keys: [Array("unacked".utf8), Array("unacked_index".utf8), Array(entry.listKey.utf8), leasesKey],
                              args: [Array(tag.utf8), entry.envelope]))
            }
            guard !calls.isEmpty else { return 0 }
            let replies = try connection.pipelineScripts(RedisScripts.requeue, calls: calls)
            return replies.filter { $0 == .integer(1) }.count
        }
    }

    /// Whether `bytes` reads as kombu's `unacked` entry: `[envelope, exchange, routing_key]`.
    static func isUnackedEntry(_ bytes: [UInt8]) -> Bool {
        guard case .array(let entry)? = try? JSONParser.parse(bytes), entry.count == 3, case .object = entry[0] else { return false }
        return true
    }

    /// What restoring an `unacked` entry (`[envelope, exchange, routing_key]`) takes: its queue,
    /// the list key of its priority bucket, and the envelope marked redelivered; nil when the
    /// entry cannot be read or its exchange routes nowhere.
    func restorable(_ bytes: [UInt8], connection: RedisConnection) throws -> (queue: String, listKey: String, envelope: [UInt8])? {
        guard case .array(let entry)? = try? JSONParser.parse(bytes), entry.count == 3, case .object(let document) = entry[0] else { return nil }
        let exchange = entry[1].stringValue ?? ""
        let routingKey = entry[2].stringValue ?? ""
        guard let queue = try destination(exchange: exchange, routingKey: routingKey, connection: connection) else { return nil }
        let priority = Int(document["properties"]?["priority"]?.intValue ?? 0)
        let bucket = Self.priorityBuckets.last(where: { $0 <= max(0, min(9, priority)) }) ?? 0
        return (queue, Self.key(queue: queue, bucket: bucket), RedisEnvelope(document: document).redeliveredBytes())
    }

    /// The queue a message published to `exchange` with `routingKey` goes to: the routing key
    /// itself on the default exchange, else the first queue bound with that key.
    private func destination(exchange: String, routingKey: String, connection: RedisConnection) throws -> String? {
        if exchange.isEmpty { return routingKey }
        guard case .array(let members) = try connection.command([Array("SMEMBERS".utf8), Array("_kombu.binding.\(exchange)".utf8)]) else {
            return nil
        }
        for member in members.compactMap(\.bytes) {
            let parts = String(decoding: member, as: UTF8.self).components(separatedBy: Self.separator)
            if parts.count == 3, parts[0] == routingKey || parts[0].isEmpty { return parts[2] }
        }
        return nil
    }
}

extension String {
    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}
