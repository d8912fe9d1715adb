import CeleryProtocol
import FnHostCore

/// The dead-letter queue on Redis: the list `fnhost.dlq`, one `DeadLetter` document per
/// message, oldest first. Moving a delivery there and acknowledging it is one atomic step, and
/// so is taking an entry out to replay it, so an entry is never lost nor replayed twice.
extension RedisBroker: DeadLetterStore {
    /// The list holding dead letters.
    public static let deadLetterKey = "fnhost.dlq"

    public func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws {
        guard !deliveries.isEmpty else { return }
        let calls = deliveries.map { item in
            (keys: [Array("unacked".utf8), Array("unacked_index".utf8), Array(Self.deadLetterKey.utf8), Array(Self.leasesKey.utf8)],
             args: [Array(item.delivery.tag.utf8), DeadLetter(delivery: item.delivery, reason: item.reason, id: UUID4.make()).encoded()])
        }
        try withControlConnection { connection in
            for reply in try connection.pipelineScripts(RedisScripts.parkAndAck, calls: calls) {
                if case .error(let e) = reply { throw RedisError(description: "dead-lettering failed: \(e)", connectionLost: false) }
            }
        }
    }

    /// Every entry of the dead-letter queue, oldest first, with its stored bytes.
    public func deadLetters() throws -> [(entry: DeadLetter?, raw: [UInt8])] {
        try withControlConnection { connection in
            guard case .array(let items) = try connection.command([Array("LRANGE".utf8), Array(Self.deadLetterKey.utf8), Array("0".utf8), Array("-1".utf8)]) else {
                return []
            }
            return items.compactMap(\.bytes).map { (DeadLetter(decoding: $0), $0) }
        }
    }

    /// Puts the entries back on their queues (retries reset, no ETA), each removed from the
    /// dead-letter queue in the same step. Returns the ids replayed.
    public func replay(_ entries: [(entry: DeadLetter, raw: [UInt8])]) throws -> [String] {
        guard !entries.isEmpty else { return [] }
        let calls = entries.map { item in
            (keys: [Array(Self.deadLetterKey.utf8), Array(item.entry.source.utf8)], args: [item.raw, item.entry.replayPayload()])
        }
        return try withControlConnection { connection in
            let replies = try connection.pipelineScripts(RedisScripts.replayDeadLetter, calls: calls)
            return zip(entries, replies).compactMap { $1 == .integer(1) ? $0.entry.id : nil }
        }
    }

    /// Removes entries (exact stored bytes) from the dead-letter queue; returns how many.
    public func purge(_ raws: [[UInt8]]) throws -> Int {
        guard !raws.isEmpty else { return 0 }
        return try withControlConnection { connection in
            try connection.pipeline(raws.map { [Array("LREM".utf8), Array(Self.deadLetterKey.utf8), Array("1".utf8), $0] })
                .reduce(0) { total, reply in if case .integer(let n) = reply { return total + Int(n) } else { return total } }
        }
    }
}
