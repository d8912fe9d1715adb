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
    private let logger: Logger
    private let lock = ConditionLock()
    private var stopped = false
    private var thread: pthread_t?
    /// Seconds a fetch waits for a message (kombu's `brpop_timeout`).
    public let pollTimeout: Double

    public init(broker: any Broker, dispatcher: Dispatcher, logger: Logger, pollTimeout: Double = 1) {
        self.broker = broker
        self.dispatcher = dispatcher
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

    private func run() {
        var backoff = 0.1
        while !isStopped {
            guard let plan = dispatcher.waitForFetchPlan(timeout: pollTimeout) else { continue }
            do {
                let deliveries = try broker.fetch(plan, timeout: pollTimeout)
                backoff = 0.1
                if !deliveries.isEmpty { dispatcher.received(deliveries) }
            } catch {
                if isStopped { break }
                logger.error("fetching from the broker failed, retrying in \(backoff)s: \(error)")
                sleepSeconds(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }
}
