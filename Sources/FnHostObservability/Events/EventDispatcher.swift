import CeleryProtocol
import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Sends Celery events (celery-protocol.md §7) for Flower, `celery events` and any
/// `app.events.Receiver`: task events when enabled (`-E`, or `enable_events` from a monitor),
/// and worker events always (`worker-online` at start, `worker-heartbeat` every `freq`
/// seconds, `worker-offline` at stop), as a Celery worker does by default.
///
/// Every event carries `hostname`, `utcoffset`, `pid`, `clock`, `timestamp` and `type`, and the
/// fields Flower reads for its type. Events are published from a thread of their own, batched
/// into one broker round trip; observers only append to a buffer. Delivery is at-most-once, as
/// in Celery: events that cannot be published (broker down) are counted and dropped, never
/// retried into a backlog that would delay the tasks themselves.
///
/// Threading: any thread.
public final class EventDispatcher: TaskObserver, @unchecked Sendable {
    /// The exchange events go to (`event_exchange`).
    public static let exchange = "celeryev"
    /// What a worker reports as `sw_ident` / `sw_ver`.
    public static let softwareIdentity = "fnhost"
    public static let softwareVersion = "0.1.0"

    public struct Status: Sendable {
        public var active: Int
        public var processed: Int
        public init(active: Int, processed: Int) {
            self.active = active
            self.processed = processed
        }
    }

    private let transport: any MonitoringTransport
    private let hostname: String
    private let clock: LamportClock
    private let heartbeatInterval: Double
    private let logger: Logger
    private let status: @Sendable () -> Status
    private let lock = ConditionLock()
    private var buffer: [MonitoringMessage] = []
    private var taskEvents: Bool
    private var stopping = false
    private var publisher: JoinableThread?
    private var heart: JoinableThread?
    private var dropped = 0
    private let pid = Int64(getpid())

    public init(transport: any MonitoringTransport, hostname: String, clock: LamportClock, taskEvents: Bool,
                heartbeatInterval: Double = 2, logger: Logger, status: @escaping @Sendable () -> Status) {
        self.transport = transport
        self.hostname = hostname
        self.clock = clock
        self.taskEvents = taskEvents
        self.heartbeatInterval = heartbeatInterval
        self.logger = logger
        self.status = status
    }

    /// Whether task events are sent (`enable_events` / `disable_events`). Returns the old value.
    @discardableResult
    public func setTaskEvents(_ on: Bool) -> Bool {
        lock.withLock {
            let old = taskEvents
            taskEvents = on
            return old
        }
    }

    public var taskEventsEnabled: Bool { lock.withLock { taskEvents } }

    /// Sends `worker-online` and starts the publisher and heartbeat threads.
    public func start() {
        send(workerEvent("worker-online"))
        let p = startThread(name: "fnhost-events") { [self] in publishLoop() }
        let h = startThread(name: "fnhost-heartbeat") { [self] in heartbeatLoop() }
        lock.withLock {
            publisher = p
            heart = h
        }
    }

    /// Sends `worker-offline`, publishes what is buffered, and stops the threads.
    public func stop() {
        send(workerEvent("worker-offline"))
        let threads = lock.withLock { () -> [JoinableThread] in
            stopping = true
            lock.broadcast()
            return [publisher, heart].compactMap { $0 }
        }
        for t in threads { t.join() }
    }

    /// Sends a `worker-heartbeat` now (the `heartbeat` control command asks for `freq` 5).
    public func heartbeat(freq: Double? = nil) {
        send(workerEvent("worker-heartbeat", freq: freq))
    }

    // MARK: Building events

    /// Python's `utcoffset()`: hours west of UTC (DST included), as a float.
    static func utcoffset() -> Double {
        var now = time(nil)
        var tm = tm()
        localtime_r(&now, &tm)
        return Double(-tm.tm_gmtoff) / 3600
    }

    private func event(_ type: String, _ fields: JSONObject) -> MonitoringMessage {
        var body = fields
        body["hostname"] = .string(hostname)
        body["utcoffset"] = .double(Self.utcoffset())
        body["pid"] = .int(pid)
        body["clock"] = .int(clock.forward())
        body["timestamp"] = .double(CeleryTime.now())
        body["type"] = .string(type)
        return MonitoringMessage(routingKey: type.replacingAll("-", with: "."), headers: ["hostname": .string(hostname)], body: .object(body))
    }

    private func workerEvent(_ type: String, freq: Double? = nil) -> MonitoringMessage {
        let s = status()
        var load = [Double](repeating: 0, count: 3)
        _ = getloadavg(&load, 3)
        var uts = utsname()
        uname(&uts)
        let sys = withUnsafeBytes(of: uts.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return event(type, [
            "freq": .double(freq ?? heartbeatInterval),
            "active": .int(Int64(s.active)),
            "processed": .int(Int64(s.processed)),
            "loadavg": .array(load.map { .double(($0 * 100).rounded() / 100) }),
            "sw_ident": .string(Self.softwareIdentity),
            "sw_ver": .string(Self.softwareVersion),
            "sw_sys": .string(sys),
        ])
    }

    static func isoOrNull(_ header: JSON?, _ epoch: Double?) -> JSON {
        if case .string(let s)? = header { return .string(s) }
        return epoch.map { .string(CeleryTime.isoformat($0)) } ?? .null
    }

    /// The Celery event for a task event, or `nil` for one Celery has no event for.
    func taskEvent(_ e: TaskEvent) -> MonitoringMessage? {
        switch e {
        case .received(let r):
            let m = r.message
            return event("task-received", [
                "uuid": .string(r.id), "name": .string(m.shadow ?? m.task),
                "args": .string(m.headers["argsrepr"]?.stringValue ?? "()"),
                "kwargs": .string(m.headers["kwargsrepr"]?.stringValue ?? "{}"),
                "root_id": m.rootId.map { .string($0) } ?? .null, "parent_id": m.parentId.map { .string($0) } ?? .null,
                "retries": .int(Int64(m.retries)),
                "eta": Self.isoOrNull(m.headers["eta"], m.eta), "expires": Self.isoOrNull(m.headers["expires"], m.expires),
            ])
        case .started(let r):
            return event("task-started", ["uuid": .string(r.id)])
        case .succeeded(let r, let json, let runtime):
            return event("task-succeeded", ["uuid": .string(r.id), "result": .string(PythonRepr.result(json)), "runtime": .double(runtime)])
        case .failed(let r, let exception, let traceback, _):
            return event("task-failed", ["uuid": .string(r.id), "exception": .string(PythonRepr.exception(exception)),
                                         "traceback": .string(traceback ?? "")])
        case .retried(let r, let exception, _):
            return event("task-retried", ["uuid": .string(r.id), "exception": .string(PythonRepr.exception(exception)), "traceback": .string("")])
        case .revoked(let r, let expired, let terminated, let signum):
            return event("task-revoked", ["uuid": .string(r.id), "terminated": .bool(terminated),
                                          "signum": signum.map { .int(Int64($0)) } ?? .null, "expired": .bool(expired)])
        case .rejected(let r, let requeue):
            return event("task-rejected", ["uuid": .string(r.id), "requeue": .bool(requeue)])
        case .refused:
            return nil
        }
    }

    // MARK: Sending

    public func observe(_ e: TaskEvent) {
        guard taskEventsEnabled, let message = taskEvent(e) else { return }
        send(message)
    }

    private func send(_ message: MonitoringMessage) {
        lock.withLock {
            buffer.append(message)
            lock.broadcast()
        }
    }

    private func publishLoop() {
        while true {
            let (batch, done) = lock.withLock { () -> ([MonitoringMessage], Bool) in
                while buffer.isEmpty && !stopping { lock.wait() }
                let batch = buffer
                buffer = []
                return (batch, stopping)
            }
            if !batch.isEmpty { publish(batch) }
            if done && lock.withLock({ buffer.isEmpty }) { return }
        }
    }

    private func publish(_ batch: [MonitoringMessage]) {
        do {
            try transport.publish(batch, toFanout: Self.exchange)
        } catch {
            // One retry on a fresh connection, then the events are dropped (at-most-once).
            do { try transport.publish(batch, toFanout: Self.exchange) } catch {
                let total = lock.withLock { dropped += batch.count; return dropped }
                logger.warning("dropped \(batch.count) Celery events (\(total) since start): \(error)")
            }
        }
    }

    private func heartbeatLoop() {
        while true {
            let deadline = monotonicNow() + heartbeatInterval
            let stop = lock.withLock { () -> Bool in
                while !stopping { if !lock.wait(until: deadline) { break } }
                return stopping
            }
            if stop { return }
            heartbeat()
        }
    }
}
