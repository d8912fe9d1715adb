import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The fetch loop: asks the dispatcher what fits, fetches exactly that from the broker, hands
/// the deliveries over. One thread; the broker call blocks it, never the Swift pool.
///
/// Broker errors are logged and retried with capped backoff; deliveries already fetched are
/// recorded as unacknowledged by the broker before `fetch` returns, so none is lost here.
public final class Consumer: @unchecked Sendable {
    private let broker: any Broker
    private let dispatcher: Dispatcher
    /// Where to look up redelivered messages' results (`nil`: never skip a redelivery).
    private let deduplicateWith: (any ResultBackend)?
    private let logger: Logger
    private let lock = ConditionLock()
    private var stopped = false
    private var thread: JoinableThread?
    private var progressAt = monotonicNow()
    private var connected = false
    /// Seconds a fetch waits for a message (kombu's `brpop_timeout`).
    public let pollTimeout: Double

    /// With `deduplicateWith`, a redelivered message whose task id already holds SUCCESS there
    /// is acknowledged without running again (`worker_deduplicate_successful_tasks`).
    public init(broker: any Broker, dispatcher: Dispatcher, logger: Logger, pollTimeout: Double = 1,
                deduplicateWith: (any ResultBackend)? = nil) {
        self.broker = broker
        self.dispatcher = dispatcher
        self.deduplicateWith = deduplicateWith
        self.logger = logger
        self.pollTimeout = pollTimeout
        dispatcher.onQueueRoomFreed = { [broker] in broker.fetchPlanWidened() }
    }

    /// Starts the fetch loop. Call it once the queues are declared: the broker counts as
    /// connected from then until a fetch fails.
    public func start() {
        lock.withLock { connected = true }
        let t = startThread(name: "fnhost-consumer") { [self] in run() }
        lock.withLock { thread = t }
    }

    /// Stops fetching; returns once the loop has ended (within one poll timeout).
    public func stop() {
        let t = lock.withLock { () -> JoinableThread? in
            stopped = true
            return thread
        }
        t?.join()
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    /// Health of the fetch loop, for liveness and readiness probes.
    public struct Health: Sendable {
        /// Monotonic seconds when the loop last completed a round: a fetch returned (with or
        /// without messages), or it waited because no slot was free. A loop stuck in a broker
        /// call, or failing every fetch, stops advancing it.
        public var lastProgress: Double
        /// Whether the last fetch reached the broker.
        public var brokerConnected: Bool
        /// Whether the loop runs (started and not stopped).
        public var running: Bool

        public init(lastProgress: Double, brokerConnected: Bool, running: Bool) {
            self.lastProgress = lastProgress
            self.brokerConnected = brokerConnected
            self.running = running
        }
    }

    /// The fetch loop's health now.
    public var health: Health {
        lock.withLock { Health(lastProgress: progressAt, brokerConnected: connected, running: thread != nil && !stopped) }
    }

    private func madeProgress(connected: Bool?) {
        lock.withLock {
            if let connected { self.connected = connected }
            if connected != false { progressAt = monotonicNow() }
        }
    }

    /// The ids of redelivered messages whose result is already SUCCESS. A lookup that fails
    /// skips nothing: running a task twice is better than losing it.
    private func alreadySucceeded(_ deliveries: [Delivery]) -> Set<String> {
        guard let backend = deduplicateWith else { return [] }
        let ids = deliveries.compactMap { delivery -> String? in
            guard case .success(let m) = delivery.message, m.headers["redelivered"] == .bool(true) else { return nil }
            return m.id
        }
        guard !ids.isEmpty else { return [] }
        do { return try backend.succeeded(among: ids) } catch {
            logger.warning("cannot check whether redelivered tasks already succeeded (running them): \(error)")
            return []
        }
    }

    private func run() {
        var backoff = 0.1
        while !isStopped {
            guard let plan = dispatcher.waitForFetchPlan(timeout: pollTimeout) else {
                madeProgress(connected: nil)
                continue
            }
            do {
                let deliveries = try broker.fetch(plan, timeout: pollTimeout)
                madeProgress(connected: true)
                backoff = 0.1
                if !deliveries.isEmpty { dispatcher.received(deliveries, alreadySucceeded: alreadySucceeded(deliveries)) }
            } catch {
                if isStopped { break }
                madeProgress(connected: false)
                logger.error("fetching from the broker failed, retrying in \(backoff)s: \(error)")
                sleepSeconds(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }
}
