import CeleryProtocol
import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The kombu-compatible Redis broker (celery-protocol.md §2): queues are lists with priority
/// buckets, deliveries are recorded in `unacked`/`unacked_index` until acknowledged, queue
/// bindings are declared in `_kombu.binding.<queue>` as kombu does.
///
/// At-least-once: a fetched message is in `unacked` from the moment it leaves its list, in the
/// same atomic step (the idle path waits with `RedisDoorbells`, which never pop; only on a Redis
/// without `BLMOVE` does it fall back to kombu's `BRPOP`, then the bookkeeping), and leaves
/// `unacked` only when acknowledged, after its outcome is settled. If the host dies, its
/// deliveries' leases (`fnhost.leases`, see `RedisBroker+Leases.swift`) stop being renewed and
/// any fnhost host serving the same queue puts them back within `leaseTimeout` plus one sweep;
/// kombu's visibility-timeout sweep (any Celery worker on the same Redis, `visibility_timeout`,
/// 1 h by default) would too.
///
/// Threading: `fetch` uses the consumer connection and is called from one thread; every other
/// method shares a second connection under a lock.
public final class RedisBroker: Broker, @unchecked Sendable {
    /// kombu's separator between a queue name and its priority bucket, and in binding members.
    public static let separator = "\u{06}\u{16}"
    /// kombu's default `priority_steps`.
    public static let priorityBuckets = [0, 3, 6, 9]

    private let url: RedisURL
    private let limits: MessageLimits
    private let consumer: RedisConnection
    private let control: RedisConnection
    private let controlLock = ConditionLock()
    private let doorbells: RedisDoorbells
    private let logger: Logger
    private let unackedKey = Array("unacked".utf8)
    private let unackedIndexKey = Array("unacked_index".utf8)
    let leasesKey = Array(RedisBroker.leasesKey.utf8)
    /// `fetchKeys` by the queues of a plan, in their order (used by the consumer thread only).
    /// The dispatcher rotates its queues between fetches (for fairness), so there is one entry per
    /// rotation of the set of queues consumed; emptied when it grows past `fetchKeysCacheLimit`.
    private var fetchKeysCache: [[String]: (keys: [[UInt8]], keyQueueIndex: [[UInt8]], listKeys: [String])] = [:]
    private static let fetchKeysCacheLimit = 256
    /// Whether the last fetch left every queue of its plan empty (it took less than a queue's
    /// limit from each): the next fetch waits on the doorbells before it runs the script. Used
    /// by the consumer thread only.
    private var queuesFoundEmpty = false
    /// Seconds a delivery's lease lasts unless renewed (`fnhost_lease_timeout`).
    public let leaseTimeout: Double

    /// A broker on `url`; every delivery it fetches holds a lease of `leaseTimeout` seconds
    /// until renewed (`renewLeases`) or settled. `limits`: a message larger than
    /// `limits.maxMessageSize` is dead-lettered without being parsed, and without an `unacked`
    /// entry (it is held only until the dead letter is written).
    public init(url: RedisURL, limits: MessageLimits = MessageLimits(), logger: Logger, leaseTimeout: Double = 30) {
        self.url = url
        self.limits = limits
        self.logger = logger
        self.leaseTimeout = leaseTimeout
        self.doorbells = RedisDoorbells(url: url)
        self.consumer = RedisConnection(url: url, readTimeout: 30)
        self.control = RedisConnection(url: url, readTimeout: 30)
    }

    public var description: String { url.description }

    /// The list key of `queue` for priority bucket `bucket`.
    public static func key(queue: String, bucket: Int) -> String {
        bucket == 0 ? queue : queue + separator + String(bucket)
    }

    /// The queue a list key belongs to (cut at the last separator, as kombu does). The separator
    /// is ASCII, so cutting the UTF-8 bytes before it leaves whole characters.
    static func queue(ofKey key: String) -> String {
        var utf8 = Array(key.utf8)
        guard utf8.count > 2 else { return key }
        for i in stride(from: utf8.count - 2, through: 0, by: -1) where utf8[i] == 0x06 && utf8[i + 1] == 0x16 {
            utf8.removeSubrange(i...)
            return String(decoding: utf8, as: UTF8.self)
        }
        return key
    }

    public func declare(queues: [String]) throws {
        var commands: [[[UInt8]]] = []
        for queue in queues {
            let member = Array((queue + Self.separator + Self.separator + queue).utf8)
            commands.append([Array("SADD".utf8), Array("_kombu.binding.\(queue)".utf8), member])
            commands.append([Array("SADD".utf8), Array("_kombu.binding_permanent.\(queue)".utf8), member])
        }
        try controlLock.withLock {
            for reply in try control.pipeline(commands) {
                if case .error(let e) = reply { throw RedisError(description: "declaring queues failed: \(e)", connectionLost: false) }
            }
        }
    }

    public func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery] {
        guard plan.total > 0, !plan.entries.isEmpty else { return [] }
        let (keys, keyQueueIndex, listKeys) = fetchKeys(plan.entries.map(\.queue))
        // The last fetch found every queue empty: wait for a message first (a doorbell rings at
        // once if one came meanwhile) rather than run the script over empty lists again. The
        // script runs after the wait (also after a timeout, so a broker that went away is
        // noticed), unless room freed for a queue this plan left out: then the caller plans again.
        if queuesFoundEmpty, doorbells.isSupported, doorbells.wait(for: listKeys, timeout: timeout) == .interrupted {
            return []
        }
        queuesFoundEmpty = false
        var args: [[UInt8]] = [Array(String(plan.total).utf8), Array(String(plan.entries.count).utf8)]
        args += plan.entries.map { Array(String($0.limit).utf8) }
        args += keyQueueIndex
        args.append(Array(String(leaseTimeout).utf8))
        args.append(Array(String(limits.maxMessageSize).utf8))
        let reply = try consumer.evalScript(RedisScripts.fetch, keys: keys, args: args)
        if case .error(let e) = reply { throw RedisError(description: "fetch script failed: \(e)", connectionLost: false) }
        if case .array(let items) = reply, !items.isEmpty {
            var deliveries: [Delivery] = []
            var i = 0
            while i + 2 < items.count {
                if let key = items[i].bytes, let payload = items[i + 1].bytes {
                    // The tag the script recorded in `unacked`, so a message it could decode but
                    // fnhost cannot (nested deeper than fnhost reads) is still acknowledged.
                    let recorded = items[i + 2].bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
                    deliveries.append(makeDelivery(key: String(decoding: key, as: UTF8.self), payload: payload, recordedTag: recorded).delivery)
                }
                i += 3
            }
            queuesFoundEmpty = Self.foundEveryQueueEmpty(plan, taken: deliveries)
            return deliveries
        }
        // Nothing waiting: wait for a message without taking it (the doorbells), and let the
        // caller fetch again with the script. Only a Redis without BLMOVE (before 6.2) takes
        // kombu's way: block in BRPOP, then record the message as unacknowledged at once.
        if doorbells.isSupported {
            queuesFoundEmpty = true
            return []
        }
        consumer.readTimeout = timeout + 10
        let brpop = [Array("BRPOP".utf8)] + listKeys.map { Array($0.utf8) } + [Array(String(timeout).utf8)]
        guard case .array(let pair) = try consumer.command(brpop), pair.count == 2,
            let keyBytes = pair[0].bytes, let payload = pair[1].bytes
        else { return [] }
        let (delivery, decoded) = makeDelivery(key: String(decoding: keyBytes, as: UTF8.self), payload: payload)
        if !delivery.tag.isEmpty {
            let exchange = decoded?.exchange ?? ""
            let routingKey = decoded?.routingKey ?? delivery.queue
            var entry: [UInt8] = [UInt8(ascii: "[")]
            entry += payload
            entry.append(UInt8(ascii: ","))
            JSONWriter.writeString(exchange, into: &entry)
            entry.append(UInt8(ascii: ","))
            JSONWriter.writeString(routingKey, into: &entry)
            entry.append(UInt8(ascii: "]"))
            let tag = Array(delivery.tag.utf8)
            let replies = try consumer.pipeline([
                [Array("MULTI".utf8)],
                [Array("ZADD".utf8), unackedIndexKey, Array(String(CeleryTime.now()).utf8), tag],
                [Array("HSET".utf8), unackedKey, tag, entry],
                // The lease, and the index score, by Redis' clock as on the scripted path.
                [Array("EVAL".utf8), Array(RedisScripts.renewLeases.utf8), Array("2".utf8), unackedIndexKey, leasesKey,
                 Array(String(leaseTimeout).utf8), tag],
                [Array("EXEC".utf8)],
            ])
            if case .error(let e) = replies.last! { logger.error("recording delivery \(delivery.tag) as unacknowledged failed: \(e)") }
        }
        return [delivery]
    }

    /// Whether a fetch that took `taken` under `plan` found every queue empty: it took fewer than
    /// the plan's total, and fewer than its limit from each queue (the script stops taking from
    /// a queue only at its limit, at the total, or when all its lists are empty).
    static func foundEveryQueueEmpty(_ plan: FetchPlan, taken: [Delivery]) -> Bool {
        guard taken.count < plan.total else { return false }
        var counts: [String: Int] = [:]
        for delivery in taken { counts[delivery.queue, default: 0] += 1 }
        return plan.entries.allSatisfy { (counts[$0.queue] ?? 0) < $0.limit }
    }

    /// The fetch script's keys for `queues` (every priority bucket of each), the queue index of
    /// each list key, and the list keys: built once per list of queues, not on every fetch.
    private func fetchKeys(_ queues: [String]) -> (keys: [[UInt8]], keyQueueIndex: [[UInt8]], listKeys: [String]) {
        if let cached = fetchKeysCache[queues] { return cached }
        var keys: [[UInt8]] = [unackedKey, unackedIndexKey, leasesKey]
        var keyQueueIndex: [[UInt8]] = []
        var listKeys: [String] = []
        for bucket in Self.priorityBuckets {
            for (i, queue) in queues.enumerated() {
                let key = Self.key(queue: queue, bucket: bucket)
                listKeys.append(key)
                keys.append(Array(key.utf8))
                keyQueueIndex.append(Array(String(i + 1).utf8))
            }
        }
        if fetchKeysCache.count >= Self.fetchKeysCacheLimit { fetchKeysCache.removeAll() }
        fetchKeysCache[queues] = (keys, keyQueueIndex, listKeys)
        return (keys, keyQueueIndex, listKeys)
    }

    /// The delivery of a popped message, and what its envelope says (`nil` when it was too large
    /// to read). `recordedTag`: the tag the fetch script recorded in `unacked` ("" for none).
    private func makeDelivery(key: String, payload: [UInt8], recordedTag: String = "") -> (delivery: Delivery, decoded: RedisEnvelope.Decoded?) {
        if let problem = limits.sizeProblem(payload.count) {
            return (Delivery(queue: Self.queue(ofKey: key), tag: recordedTag, source: key, payload: payload, message: .failure(problem)), nil)
        }
        let decoded = RedisEnvelope.decodeDelivery(payload)
        let tag = decoded.deliveryTag ?? recordedTag
        let delivery = Delivery(queue: Self.queue(ofKey: key), tag: tag, source: key, payload: payload, message: decoded.message)
        return (delivery, decoded)
    }

    public func ack(_ deliveries: [Delivery]) throws {
        let tags = deliveries.map(\.tag).filter { !$0.isEmpty }.map { Array($0.utf8) }
        guard !tags.isEmpty else { return }
        try controlLock.withLock {
            let replies = try control.pipeline([
                [Array("MULTI".utf8)],
                [Array("ZREM".utf8), unackedIndexKey] + tags,
                [Array("HDEL".utf8), unackedKey] + tags,
                [Array("ZREM".utf8), leasesKey] + tags,
                [Array("EXEC".utf8)],
            ])
            if case .error(let e) = replies.last! { throw RedisError(description: "ack failed: \(e)", connectionLost: false) }
        }
    }

    public func requeue(_ deliveries: [Delivery]) throws {
        var calls: [(keys: [[UInt8]], args: [[UInt8]])] = []
        var plain: [[[UInt8]]] = []
        for d in deliveries {
            let payload = (try? RedisEnvelope(bytes: d.payload))?.redeliveredBytes() ?? d.payload
            if d.tag.isEmpty {
                plain.append([Array("RPUSH".utf8), Array(d.source.utf8), payload])
            } else {
                calls.append((keys: [unackedKey, unackedIndexKey, Array(d.source.utf8), leasesKey], args: [Array(d.tag.utf8), payload]))
            }
        }
        try controlLock.withLock {
            if !calls.isEmpty {
                for reply in try control.pipelineScripts(RedisScripts.requeue, calls: calls) {
                    if case .error(let e) = reply { throw RedisError(description: "requeue failed: \(e)", connectionLost: false) }
                }
            }
            if !plain.isEmpty { _ = try control.pipeline(plain) }
        }
    }

    public func publish(_ message: TaskMessage, toQueue queue: String) throws {
        let tag = UUID4.make()
        let bucket = Self.priorityBuckets.last(where: { $0 <= max(0, min(9, message.priority)) }) ?? 0
        let envelope = RedisEnvelope.encode(message, queue: queue, deliveryTag: tag)
        try controlLock.withLock {
            let reply = try control.command([Array("LPUSH".utf8), Array(Self.key(queue: queue, bucket: bucket).utf8), envelope])
            if case .error(let e) = reply { throw RedisError(description: "publish to \(queue) failed: \(e)", connectionLost: false) }
        }
    }

    public func fetchPlanWidened() {
        doorbells.interrupt()
    }

    public func close() {
        doorbells.close()
        controlLock.withLock { control.disconnect() }
    }

    /// Runs `body` with the shared control connection, under its lock.
    func withControlConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        try controlLock.withLock { try body(control) }
    }
}
