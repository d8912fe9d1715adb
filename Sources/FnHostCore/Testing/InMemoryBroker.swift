import CeleryProtocol

/// A broker and result backend in memory, with kombu's Redis semantics (FIFO lists,
/// unacknowledged deliveries kept until acked), for testing the core without a server.
public final class InMemoryBroker: Broker, ResultBackend, @unchecked Sendable {
    private let lock = ConditionLock()
    private var lists: [String: [[UInt8]]] = [:]
    private var unacked: [String: Delivery] = [:]
    private var stored: [String: ResultMeta] = [:]
    private var delayed: [(until: Double, source: String, payload: [UInt8])] = []
    private var deadLetters: [(reason: String, queue: String, payload: [UInt8])] = []
    private var closed = false
    private var nextTag = 0

    public init() {}

    /// Appends a task message to `queue` as a producer would.
    public func send(_ message: TaskMessage, to queue: String) {
        try? publish(message, toQueue: queue)
    }

    /// Appends raw bytes to `queue` (for malformed-message tests).
    public func sendRaw(_ payload: [UInt8], to queue: String) {
        lock.withLock {
            lists[queue, default: []].append(payload)
            lock.broadcast()
        }
    }

    public func declare(queues: [String]) throws {}

    public func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery] {
        let deadline = monotonicNow() + timeout
        return lock.withLock {
            while true {
                var out: [Delivery] = []
                for entry in plan.entries {
                    var taken = 0
                    while taken < entry.limit, out.count < plan.total, var list = lists[entry.queue], !list.isEmpty {
                        let payload = list.removeFirst()
                        lists[entry.queue] = list
                        nextTag += 1
                        let tag = "tag-\(nextTag)"
                        let message: Result<TaskMessage, MessageDecodingError>
                        message = RedisEnvelope.decodeDelivery(payload).message
                        let delivery = Delivery(queue: entry.queue, tag: tag, source: entry.queue, payload: payload, message: message)
                        unacked[tag] = delivery
                        out.append(delivery)
                        taken += 1
                    }
                }
                if !out.isEmpty || closed || !lock.wait(until: deadline) { return out }
            }
        }
    }

    public func ack(_ deliveries: [Delivery]) throws {
        lock.withLock { for d in deliveries { unacked[d.tag] = nil } }
    }

    public func requeue(_ deliveries: [Delivery]) throws {
        lock.withLock {
            for d in deliveries where unacked.removeValue(forKey: d.tag) != nil {
                lists[d.source, default: []].insert(d.payload, at: 0)
            }
            lock.broadcast()
        }
    }

    public func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws {
        lock.withLock {
            for (d, until) in deliveries {
                unacked[d.tag] = nil
                delayed.append((until, d.source, d.payload))
            }
        }
    }

    /// Moves delayed messages due at `now` back to the front of their queues; returns how many.
    @discardableResult
    public func moveDueDelayed(now: Double) -> Int {
        lock.withLock {
            let due = delayed.filter { $0.until <= now }
            delayed.removeAll { $0.until <= now }
            for item in due { lists[item.source, default: []].insert(item.payload, at: 0) }
            lock.broadcast()
            return due.count
        }
    }

    public func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws {
        lock.withLock {
            for (d, reason) in deliveries {
                unacked[d.tag] = nil
                deadLetters.append((reason, d.queue, d.payload))
            }
        }
    }

    /// What went to the dead-letter queue, in order.
    public var deadLettered: [(reason: String, queue: String, payload: [UInt8])] { lock.withLock { deadLetters } }

    /// Messages waiting in the delayed store.
    public var delayedCount: Int { lock.withLock { delayed.count } }

    public func publish(_ message: TaskMessage, toQueue queue: String) throws {
        sendRaw(RedisEnvelope.encode(message, queue: queue, deliveryTag: "pub-\(queue)-\(message.id)-\(message.retries)"), to: queue)
    }

    public func store(_ results: [ResultMeta]) throws {
        lock.withLock {
            for meta in results where stored[meta.taskId]?.status != .success { stored[meta.taskId] = meta }
            lock.broadcast()
        }
    }

    public func succeeded(among taskIds: [String]) throws -> Set<String> {
        lock.withLock { Set(taskIds.filter { stored[$0]?.status == .success }) }
    }

    public func close() {
        lock.withLock { closed = true; lock.broadcast() }
    }

    /// The result stored for `taskId`.
    public func result(_ taskId: String) -> ResultMeta? { lock.withLock { stored[taskId] } }

    /// Waits up to `timeout` seconds for a ready result of `taskId`.
    public func waitForResult(_ taskId: String, timeout: Double) -> ResultMeta? {
        let deadline = monotonicNow() + timeout
        return lock.withLock {
            while true {
                if let meta = stored[taskId], meta.status.isReady { return meta }
                if !lock.wait(until: deadline) { return stored[taskId] }
            }
        }
    }

    /// Messages waiting in `queue`.
    public func length(of queue: String) -> Int { lock.withLock { lists[queue]?.count ?? 0 } }

    /// Deliveries fetched and not yet acknowledged.
    public var unackedCount: Int { lock.withLock { unacked.count } }
}
