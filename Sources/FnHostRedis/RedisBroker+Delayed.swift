import CeleryProtocol
import FnHostCore

/// The durable delayed store on Redis: a sorted set `fnhost.delayed` whose members are
/// `<list key>\x06\x16<envelope>` scored by the ETA (epoch seconds).
///
/// A long-ETA delivery moves there and leaves `unacked` in one atomic step, so it is neither
/// held by a host nor restored by a visibility timeout while it waits (Celery's duplicate ETA
/// runs, kombu#337). Once due, any host's mover puts it back at the consuming end of its list;
/// `ZREM` decides which mover owns it, so it goes back exactly once.
extension RedisBroker {
    /// The sorted set holding delayed messages.
    public static let delayedKey = "fnhost.delayed"

    public func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws {
        guard !deliveries.isEmpty else { return }
        let calls = deliveries.map { item in
            (keys: [Array("unacked".utf8), Array("unacked_index".utf8), Array(Self.delayedKey.utf8), Array(Self.leasesKey.utf8)],
             args: [Array(item.delivery.tag.utf8), Array((item.delivery.source + Self.separator).utf8) + item.delivery.payload,
                    Array(String(item.until).utf8)])
        }
        try withControlConnection { connection in
            for reply in try connection.pipelineScripts(RedisScripts.parkAndAck, calls: calls) {
                if case .error(let e) = reply { throw RedisError(description: "moving a delivery to the delayed store failed: \(e)", connectionLost: false) }
            }
        }
    }

    /// Moves up to `limit` delayed messages that are due (by Redis' own clock) back to their
    /// lists. Returns how many moved.
    @discardableResult
    public func moveDueDelayed(limit: Int = 500) throws -> Int {
        try withControlConnection { connection in
            let reply = try connection.evalScript(RedisScripts.moveDue, keys: [Array(Self.delayedKey.utf8)],
                                                  args: [Array(String(limit).utf8), Array(Self.separator.utf8)])
            switch reply {
            case .integer(let n): return Int(n)
            case .error(let e): throw RedisError(description: "moving due delayed messages failed: \(e)", connectionLost: false)
            default: return 0
            }
        }
    }
}
