import CeleryProtocol
import FnHostCore

/// fnhost's delivery leases on Redis, so that the deliveries of a host that died go back to
/// their queues within a minute instead of kombu's `visibility_timeout` (an hour by default).
///
/// - Every delivery fnhost fetches gets a lease in `fnhost.leases` (delivery tag -> expiry,
///   epoch seconds by Redis' clock) in the same atomic step as the pop and kombu's `unacked`
///   bookkeeping, which stay exactly as kombu has them (so Celery's own restore still works).
/// - A live host renews the leases of every delivery it holds (reserved, scheduled or running)
///   every `leaseTimeout / 3` seconds, and moves their `unacked_index` score to now, so no
///   visibility-timeout sweep (fnhost's or a Python worker's) restores a task that runs longer
///   than the visibility timeout while its holder is alive.
/// - The lease goes with the ack, the requeue, or the move to the delayed store or the
///   dead-letter queue.
/// - `restoreExpiredLeases` restores a delivery only if its lease expired (checked again inside
///   the atomic restore step, so a lease renewed meanwhile wins), it is still in `unacked`, and
///   its queue is one of the given queues. Deliveries of Python Celery workers have no lease and
///   are never touched; neither are queues the caller does not serve. The restore step itself
///   decides (`HDEL` returns 1 once), so concurrent sweeps of several hosts restore each
///   delivery once, and no mutex is needed.
extension RedisBroker {
    /// The sorted set of leases: delivery tag -> lease expiry (epoch seconds).
    public static let leasesKey = "fnhost.leases"

    /// Renews the leases of `tags` (those still unacknowledged) for another `leaseTimeout`.
    public func renewLeases(_ tags: Set<String>) throws {
        guard !tags.isEmpty else { return }
        let args = [Array(String(leaseTimeout).utf8)] + tags.map { Array($0.utf8) }
        try withControlConnection { connection in
            let reply = try connection.evalScript(RedisScripts.renewLeases, keys: [Array("unacked_index".utf8), leasesKey], args: args)
            if case .error(let e) = reply { throw RedisError(description: "renewing leases failed: \(e)", connectionLost: false) }
        }
    }

    /// Restores the deliveries whose lease expired, that are still unacknowledged, are not in
    /// `holding`, and belong to one of `queues`. Returns how many were restored.
    @discardableResult
    public func restoreExpiredLeases(queues: Set<String>, holding: Set<String>, limit: Int = 1000) throws -> Int {
        try withControlConnection { connection in
            guard case .array(let time) = try connection.command([Array("TIME".utf8)]), time.count == 2,
                let seconds = time[0].bytes.flatMap({ Double(String(decoding: $0, as: UTF8.self)) })
            else { return 0 }
            guard case .array(let items) = try connection.command([
                Array("ZRANGEBYSCORE".utf8), leasesKey, Array("-inf".utf8), Array(String(seconds).utf8),
                Array("LIMIT".utf8), Array("0".utf8), Array(String(limit).utf8),
            ]) else { return 0 }
            let tags = items.compactMap(\.bytes).map { String(decoding: $0, as: UTF8.self) }.filter { !holding.contains($0) }
            guard !tags.isEmpty else { return 0 }
            let values = try connection.pipeline(tags.map { [Array("HGET".utf8), Array("unacked".utf8), Array($0.utf8)] })
            var calls: [(keys: [[UInt8]], args: [[UInt8]])] = []
            var stale: [(keys: [[UInt8]], args: [[UInt8]])] = []
            for (tag, value) in zip(tags, values) {
                guard let bytes = value.bytes else {
                    stale.append((keys: [Array("unacked".utf8), leasesKey], args: [Array(tag.utf8)]))
                    continue
                }
                guard let (queue, listKey, envelope) = try restorable(bytes, connection: connection), queues.contains(queue) else { continue }
                calls.append((keys: [Array("unacked".utf8), Array("unacked_index".utf8), leasesKey, Array(listKey.utf8)],
                              args: [Array(tag.utf8), envelope]))
            }
            if !stale.isEmpty { _ = try connection.pipelineScripts(RedisScripts.dropStaleLease, calls: stale) }
            guard !calls.isEmpty else { return 0 }
            let replies = try connection.pipelineScripts(RedisScripts.restoreExpiredLease, calls: calls)
            return replies.filter { $0 == .integer(1) }.count
        }
    }
}
