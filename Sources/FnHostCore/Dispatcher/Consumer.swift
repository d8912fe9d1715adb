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
    private var thread: pthread_t?
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
    }

    public func start() {
        thread = startThread(name: "fnhost-consumer") { [self] in run() }
    }

    /// Stops fetching; returns once the loop has ended (within one poll timeout).
    public func stop() {
        lock.withLock { stopped = true }
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private var isStopped: Bool { lock.withLock { stopped } }

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
            guard let plan = dispatcher.waitForFetchPlan(timeout: pollTimeout) else { continue }
            do {
                let deliveries = try broker.fetch(plan, timeout: pollTimeout)
                backoff = 0.1
                if !deliveries.isEmpty { dispatcher.received(deliveries, alreadySucceeded: alreadySucceeded(deliveries)) }
            } catch {
                if isStopped { break }
                logger.error("fetching from the broker failed, retrying in \(backoff)s: \(error)")
                sleepSeconds(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }
}
