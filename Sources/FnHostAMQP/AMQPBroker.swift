import CRabbitMQ
import CeleryProtocol
import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The RabbitMQ broker (celery-protocol.md §3), over librabbitmq-c: one connection consuming,
/// one publishing (`AMQPPublisher`, with publisher confirms).
///
/// Consuming: an I/O thread owns the consuming connection. It declares each task queue as Celery
/// does, sets `basic.qos` per consumer to that queue's share (function concurrency x
/// `worker_prefetch_multiplier`) and on the channel to the whole host's (per consumer only for
/// quorum queues), consumes, and buffers deliveries until `fetch` takes them within the
/// dispatcher's plan. Acknowledgements and rejections are handed to the I/O thread, which sends
/// them at once (it wakes on an eventfd).
///
/// Reconnects: when the connection drops, the thread reconnects with capped, jittered backoff,
/// redeclares and consumes again. Deliveries of the lost connection are redelivered by RabbitMQ
/// (at-least-once); their late acknowledgements are dropped, since their tags meant the old
/// channel. Tasks that were running finish and their results are still published.
public final class AMQPBroker: Broker, @unchecked Sendable {
    public struct Settings: Sendable {
        public var url: AMQPURL
        public var tls: TLSOptions
        /// `broker_heartbeat` (seconds; 0 turns heartbeats off).
        public var heartbeat: Int
        public var topology: AMQPTopology
        /// A body larger than `limits.maxMessageSize` is refused unread: FAILURE under the id
        /// from its headers, and dead-lettered.
        public var limits: MessageLimits

        public init(url: AMQPURL, tls: TLSOptions = .init(), heartbeat: Int = 120, topology: AMQPTopology = .init(),
                    limits: MessageLimits = MessageLimits()) {
            self.url = url
            self.tls = tls
            self.heartbeat = heartbeat
            self.topology = topology
            self.limits = limits
        }
    }

    private enum Operation {
        case ack(UInt64)
        case reject(UInt64, requeue: Bool)
    }

    public let settings: Settings
    /// The publishing connection, shared with the rpc:// backend.
    public let publisher: AMQPPublisher
    private let consumer: AMQPConnection
    private let logger: Logger
    private let lock = ConditionLock()
    private let wakeFD: Int32

    // State behind `lock`.
    private var queues: [String] = []
    private var perQueuePrefetch: [String: Int] = [:]
    private var channelPrefetch = 0
    private var buffer: [Delivery] = []
    private var operations: [(generation: Int, operation: Operation)] = []
    /// Properties and bodies of deliveries not settled yet (for the delayed store and the DLQ).
    private var unsettled: [String: AMQPIncoming] = [:]
    private var generation = 0
    private var connected = false
    private var stopping = false
    private var thread: JoinableThread?
    private var reconnects = 0
    /// Delivery tags of the current connection not acknowledged or rejected yet, ascending
    /// (the I/O thread's own: acknowledged with `multiple` where a prefix is done).
    private var outstanding: [UInt64] = []
    /// The queues the consuming connection consumes now (the I/O thread's own).
    private var consuming: Set<String> = []
    /// Set by `declare` when the queue set changed (a hot reload) while consuming.
    private var queuesChanged = false

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.consumer = AMQPConnection(url: settings.url, tls: settings.tls, heartbeat: settings.heartbeat, name: "fnhost consumer")
        self.publisher = AMQPPublisher(url: settings.url, tls: settings.tls, heartbeat: settings.heartbeat, topology: settings.topology, logger: logger)
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    deinit { Glibc.close(wakeFD) }

    public var description: String { settings.url.description }

    /// True while the consuming connection is up and consuming.
    public var isConnected: Bool { lock.withLock { connected } }

    /// How many times the consuming connection was re-established.
    public var reconnectCount: Int { lock.withLock { reconnects } }

    /// Sets the prefetch windows before `declare`: per queue (its functions' concurrency x
    /// multiplier) and for the whole channel.
    public func setPrefetch(perQueue: [String: Int], total: Int) {
        lock.withLock {
            perQueuePrefetch = perQueue
            channelPrefetch = total
        }
    }

    /// Declares the queues (checking the broker is reachable and the declarations agree), then
    /// starts the I/O thread that consumes them.
    public func declare(queues: [String]) throws {
        let connection = AMQPConnection(url: settings.url, tls: settings.tls, heartbeat: 0, name: "fnhost declare")
        do {
            try connection.open()
            for queue in queues { try Self.declareTaskQueue(queue, on: connection, topology: settings.topology, logger: logger) }
            connection.close()
        } catch {
            connection.close()
            throw error
        }
        let start: Bool = lock.withLock {
            if self.queues != queues { queuesChanged = true }
            self.queues = queues
            return thread == nil
        }
        if start {
            let t = startThread(name: "fnhost-amqp-consumer") { [self] in run() }
            lock.withLock { thread = t }
        } else {
            wake()
        }
    }

    /// Declares task queue `queue` and its direct exchange as Celery does. A 406 (the queue
    /// exists with other arguments) is reported with ours and the broker's, then the queue is
    /// declared passively so fnhost still consumes it as it is.
    static func declareTaskQueue(_ queue: String, on connection: AMQPConnection, topology: AMQPTopology, logger: Logger) throws(AMQPError) {
        let arguments = topology.arguments(for: queue)
        do {
            try connection.declareQueue(queue, durable: true, arguments: arguments)
        } catch let error where error.isPreconditionFailed && !error.connectionLost {
            let ours = arguments.count == 0 ? "none" : JSONWriter.string(.object(arguments))
            logger.error("""
                queue '\(queue)' exists with other arguments than fnhost declares (ours: \(ours); the broker says: \(error.description)); \
                set task_queue_max_priority / task_default_queue_type / task_queues in fnhost.yml to match the producer's. \
                Consuming the queue as it is (passive declare).
                """)
            try connection.declareQueue(queue, passive: true, durable: true)
        }
        try connection.declareExchange(queue, type: "direct", durable: true)
        try connection.bind(queue: queue, exchange: queue, routingKey: queue)
    }

    // MARK: Fetching

    public func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery] {
        guard plan.total > 0, !plan.entries.isEmpty else { return [] }
        let deadline = monotonicNow() + timeout
        return try lock.withLock {
            while true {
                if !buffer.isEmpty {
                    var limits: [String: Int] = [:]
                    for entry in plan.entries { limits[entry.queue] = entry.limit }
                    var taken: [Delivery] = []
                    var kept: [Delivery] = []
                    for delivery in buffer {
                        if taken.count < plan.total, let left = limits[delivery.queue], left > 0 {
                            taken.append(delivery)
                            limits[delivery.queue] = left - 1
                        } else {
                            kept.append(delivery)
                        }
                    }
                    if !taken.isEmpty {
                        buffer = kept
                        return taken
                    }
                }
                if stopping { return [] }
                if !lock.wait(until: deadline) {
                    // Nothing can arrive while the consuming connection is down: say so, so the
                    // consumer (and /readyz) know the broker is not reached.
                    if !connected && thread != nil { throw AMQPError("not consuming: the connection to \(settings.url) is down (reconnecting)") }
                    return []
                }
            }
        }
    }

    // MARK: Settling

    private static func parse(tag: String) -> (generation: Int, tag: UInt64)? {
        guard let dot = tag.firstIndex(of: "."), let g = Int(tag[..<dot]), let t = UInt64(tag[tag.index(after: dot)...]) else { return nil }
        return (g, t)
    }

    private func enqueue(_ deliveries: [Delivery], _ make: (UInt64) -> Operation) {
        lock.withLock {
            for d in deliveries {
                guard let (g, t) = Self.parse(tag: d.tag) else { continue }
                unsettled[d.tag] = nil
                if g == generation { operations.append((g, make(t))) }
            }
        }
        wake()
    }

    public func ack(_ deliveries: [Delivery]) throws {
        enqueue(deliveries) { .ack($0) }
    }

    public func requeue(_ deliveries: [Delivery]) throws {
        enqueue(deliveries) { .reject($0, requeue: true) }
    }

    /// The message of a delivery as received, for publishing a copy of it elsewhere.
    private func copy(of delivery: Delivery, extraHeaders: JSONObject = [:]) -> AMQPPublisher.Message {
        let incoming = lock.withLock { unsettled[delivery.tag] }
        var properties = incoming?.properties ?? AMQPProperties()
        if extraHeaders.count > 0 {
            var headers = properties.headers ?? [:]
            for (k, v) in extraHeaders.entries { headers[k] = v }
            properties.headers = headers
        }
        return AMQPPublisher.Message(routingKey: delivery.queue, properties: properties, body: incoming?.body ?? delivery.payload)
    }

    /// Publishes each to its delay level (confirmed), then acknowledges it. Not one atomic step
    /// as on Redis: a crash between the two leaves both copies (at-least-once, never lost).
    public func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws {
        let now = CeleryTime.now()
        try publisher.delay(deliveries.map { (copy(of: $0.delivery), $0.until - now) })
        try ack(deliveries.map(\.delivery))
    }

    /// Publishes each, intact, to `fnhost.dlq` with its reason in headers (confirmed), then
    /// acknowledges it.
    public func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws {
        let now = CeleryTime.now()
        let messages = deliveries.map { item in
            var m = copy(of: item.delivery, extraHeaders: [
                "x-fnhost-dead-letter-id": .string(Self.newId()),
                "x-fnhost-reason": .string(item.reason), "x-fnhost-queue": .string(item.delivery.queue),
                "x-fnhost-dead-lettered-at": .string(CeleryTime.isoformat(now)),
            ])
            m.routingKey = AMQPTopology.deadLetterQueue
            return m
        }
        try publisher.withConnection { c in
            try c.declareQueue(AMQPTopology.deadLetterQueue, durable: true)
        }
        try publisher.publish(messages)
        try ack(deliveries.map(\.delivery))
    }

    /// A random id for a dead letter (a version-4 UUID).
    static func newId() -> String {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }

    public func publish(_ message: TaskMessage, toQueue queue: String) throws {
        try publisher.publish(toQueue: queue, properties: Self.properties(of: message), body: message.body)
    }

    /// The AMQP properties Celery gives a task message (celery-protocol.md §3.2).
    static func properties(of message: TaskMessage) -> AMQPProperties {
        var headers = message.headers
        headers["redelivered"] = nil
        return AMQPProperties(
            contentType: message.contentType, contentEncoding: message.contentEncoding, headers: headers, deliveryMode: 2,
            priority: UInt8(clamping: message.priority), correlationId: message.correlationId ?? message.id, replyTo: message.replyTo ?? "")
    }

    public func close() {
        let t: JoinableThread? = lock.withLock {
            stopping = true
            lock.broadcast()
            defer { thread = nil }  // a later `consume` starts a thread of its own
            return thread
        }
        wake()
        t?.join()
        publisher.close()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: The I/O thread

    private func run() {
        var backoff = 0.2
        while !lock.withLock({ stopping }) {
            if !consumer.isOpen {
                do {
                    try connect()
                    backoff = 0.2
                } catch {
                    consumer.close()
                    let jittered = backoff * (0.5 + Double.random(in: 0..<0.5))
                    logger.error("cannot consume from \(settings.url) (retrying in \(String(format2(jittered)))s): \(error)")
                    waitForWake(seconds: jittered)
                    backoff = min(backoff * 2, 10)
                    continue
                }
            }
            do {
                try applyQueueChanges()
                try flushOperations()
                var received: [Delivery] = []
                while received.count < 512 {
                    let input = try consumer.next(timeout: 0)
                    if case .delivery(let incoming) = input {
                        guard consuming.contains(incoming.consumerTag) else {
                            // From a consumer cancelled by a reload, sent before the cancel: back it goes.
                            try consumer.reject(incoming.deliveryTag, requeue: true)
                            continue
                        }
                        outstanding.append(incoming.deliveryTag)
                        received.append(delivery(from: incoming))
                    } else if case .cancelled(let tag) = input {
                        throw AMQPError("the broker cancelled consumer \(tag) (was its queue deleted?)")
                    } else {
                        break
                    }
                }
                if !received.isEmpty {
                    lock.withLock {
                        buffer.append(contentsOf: received)
                        lock.broadcast()
                    }
                    continue
                }
                try flushOperations()
                if consumer.hasBufferedInput { continue }
                let interval = settings.heartbeat > 0 ? min(1, Double(settings.heartbeat) / 4) : 1
                pollSocket(seconds: interval)
            } catch {
                lostConnection(error)
            }
        }
        // Stopping: send what was settled, then close (RabbitMQ requeues the rest).
        try? flushOperations()
        consumer.close()
        lock.withLock { connected = false }
    }

    private func connect() throws {
        let (queues, perQueue, total) = lock.withLock { (self.queues, perQueuePrefetch, channelPrefetch) }
        try consumer.open()
        for queue in queues { try Self.declareTaskQueue(queue, on: consumer, topology: settings.topology, logger: logger) }
        let anyQuorum = queues.contains { settings.topology.isQuorum($0) }
        if total > 0 && !anyQuorum { try consumer.qos(prefetchCount: total, global: true) }
        consuming = []
        for queue in queues {
            try consumer.qos(prefetchCount: perQueue[queue] ?? total, global: false)
            try consumer.consume(queue: queue, consumerTag: queue)
            consuming.insert(queue)
        }
        let wasReconnect = lock.withLock { () -> Bool in
            queuesChanged = false
            connected = true
            let again = generation > 0
            if again { reconnects += 1 }
            return again
        }
        if wasReconnect { logger.notice("consuming from \(settings.url) again: queues [\(queues.joined(separator: ", "))]") }
    }

    /// After a reload changed the queue set: consume the new queues, cancel the removed ones and
    /// give back what is buffered from them (unstarted, so nothing runs twice).
    private func applyQueueChanges() throws {
        let (changed, queues, perQueue, total) = lock.withLock { () -> (Bool, [String], [String: Int], Int) in
            let c = queuesChanged
            queuesChanged = false
            return (c, self.queues, perQueuePrefetch, channelPrefetch)
        }
        guard changed else { return }
        let wanted = Set(queues)
        for queue in queues where !consuming.contains(queue) {
            try Self.declareTaskQueue(queue, on: consumer, topology: settings.topology, logger: logger)
            try consumer.qos(prefetchCount: perQueue[queue] ?? total, global: false)
            try consumer.consume(queue: queue, consumerTag: queue)
            consuming.insert(queue)
        }
        let removed = consuming.subtracting(wanted)
        guard !removed.isEmpty else { return }
        for queue in removed.sorted() {
            try consumer.cancel(consumerTag: queue)
            consuming.remove(queue)
        }
        let giveBack: [Delivery] = lock.withLock {
            let back = buffer.filter { removed.contains($0.queue) }
            buffer.removeAll { removed.contains($0.queue) }
            for d in back { unsettled[d.tag] = nil }
            return back
        }
        for d in giveBack {
            guard let (_, tag) = Self.parse(tag: d.tag) else { continue }
            try consumer.reject(tag, requeue: true)
            outstanding.removeAll { $0 == tag }
        }
        logger.info("stopped consuming [\(removed.sorted().joined(separator: ", "))]; gave \(giveBack.count) unstarted deliveries back")
    }

    private func lostConnection(_ error: Error) {
        consumer.close()
        outstanding.removeAll()
        let dropped: Int = lock.withLock {
            connected = false
            generation += 1
            let n = buffer.count
            buffer.removeAll()
            operations.removeAll()
            return n
        }
        logger.error("lost the consuming connection to \(settings.url): \(error); reconnecting (\(dropped) buffered deliveries will be redelivered by the broker)")
    }

    private func delivery(from incoming: AMQPIncoming) -> Delivery {
        let g = lock.withLock { generation }
        let tag = "\(g).\(incoming.deliveryTag)"
        let queue = incoming.consumerTag.isEmpty ? incoming.routingKey : incoming.consumerTag
        var message: Result<TaskMessage, MessageDecodingError>
        if var headers = incoming.properties.headers {
            if incoming.redelivered { headers["redelivered"] = .bool(true) }
            do {
                message = .success(try TaskMessage(
                    headers: headers, contentType: incoming.properties.contentType ?? "", contentEncoding: incoming.properties.contentEncoding ?? "",
                    body: incoming.body, correlationId: incoming.properties.correlationId, replyTo: incoming.properties.replyTo,
                    priority: Int(incoming.properties.priority ?? 0)))
            } catch {
                message = .failure(error)
            }
            if case .success(let m) = message, let problem = settings.limits.sizeProblem(incoming.body.count, taskId: m.id, taskName: m.task) {
                message = .failure(problem)
            }
        } else {
            message = .failure(MessageDecodingError(.malformedHeaders, "the message has no headers table (protocol 1 messages are not supported)"))
        }
        lock.withLock { unsettled[tag] = incoming }
        return Delivery(queue: queue, tag: tag, source: queue, payload: [], message: message)
    }

    private func flushOperations() throws {
        let (pending, current) = lock.withLock { () -> ([(generation: Int, operation: Operation)], Int) in
            let p = operations
            operations.removeAll()
            return (p, generation)
        }
        var drained: UInt64 = 0
        _ = read(wakeFD, &drained, 8)
        var acks: Set<UInt64> = []
        for item in pending where item.generation == current {
            switch item.operation {
            case .ack(let tag): acks.insert(tag)
            case .reject(let tag, let requeue):
                try consumer.reject(tag, requeue: requeue)
                outstanding.removeAll { $0 == tag }
            }
        }
        guard !acks.isEmpty else { return }
        // The longest prefix of outstanding tags that are all acknowledged goes as one
        // `basic.ack multiple`; the rest one by one.
        var prefix = 0
        while prefix < outstanding.count && acks.contains(outstanding[prefix]) { prefix += 1 }
        if prefix > 1 {
            try consumer.ack(outstanding[prefix - 1], multiple: true)
            for tag in outstanding[..<prefix] { acks.remove(tag) }
            outstanding.removeFirst(prefix)
        }
        for tag in acks.sorted() {
            try consumer.ack(tag)
            outstanding.removeAll { $0 == tag }
        }
    }

    private func pollSocket(seconds: Double) {
        var fds = [pollfd(fd: consumer.socketDescriptor, events: fnhost_pollin(), revents: 0),
                   pollfd(fd: wakeFD, events: fnhost_pollin(), revents: 0)]
        _ = poll(&fds, 2, Int32(seconds * 1000))
    }

    private func waitForWake(seconds: Double) {
        var fds = [pollfd(fd: wakeFD, events: fnhost_pollin(), revents: 0)]
        _ = poll(&fds, 1, Int32(seconds * 1000))
        var drained: UInt64 = 0
        _ = read(wakeFD, &drained, 8)
    }
}

private func format2(_ x: Double) -> String {
    let hundredths = Int((x * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}
