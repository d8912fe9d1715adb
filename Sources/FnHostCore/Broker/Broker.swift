import CeleryProtocol

/// A message broker as fnhost consumes it: RabbitMQ or Redis (kombu layout), or in memory.
///
/// Threading: `fetch` is called from the consumer thread only; `ack`, `requeue`, `publish` and
/// `declare` by whichever thread carries out settlements (the outcome handler's, or a worker
/// process's reader settling a lone task: `OutcomeHandler.submitAndSettle`), never two at once,
/// and once at start. An implementation keeps the consumer's connection apart from the others'
/// and never blocks the Swift cooperative pool.
public protocol Broker: AnyObject, Sendable {
    /// Declares the queues fnhost consumes, the way kombu does (bindings on Redis).
    func declare(queues: [String]) throws

    /// Takes up to `plan.total` messages (at most each entry's limit from its queue), waiting up
    /// to `timeout` seconds for the first. Each returned delivery is already recorded as
    /// unacknowledged, so a crash after this call loses nothing.
    func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery]

    /// Acknowledges (removes for good) the deliveries. Acknowledging twice is harmless.
    func ack(_ deliveries: [Delivery]) throws

    /// Gives deliveries back to the front of their queues, marked redelivered (warm shutdown,
    /// reject with requeue). A delivery already acknowledged or restored is left alone.
    func requeue(_ deliveries: [Delivery]) throws

    /// Moves deliveries to the broker's durable delayed store, each until its time (epoch
    /// seconds), acknowledging them in the same atomic step. The broker puts each back at the
    /// consuming end of its queue once due (see the broker's own mover), exactly once.
    func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws

    /// Moves deliveries, exactly as received, to the dead-letter queue with their reason,
    /// acknowledging each in the same atomic step.
    func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws

    /// Publishes a serialized message to `queue` through the default exchange.
    func publish(_ message: TaskMessage, toQueue queue: String) throws

    /// Wakes a blocked `fetch` early and closes connections; later calls fail.
    func close()

    /// Room freed for a queue that the fetch under way may not be waiting on: a `fetch` that is
    /// waiting for messages returns early (with nothing), so the caller fetches again with a
    /// plan that includes it. Cheap when no fetch is waiting; called from any thread.
    func fetchPlanWidened()
}

extension Broker {
    /// A broker whose wait for messages covers every queue it consumes needs no wake-up.
    public func fetchPlanWidened() {}
}

/// Where task results go: Redis, rpc://, or in memory.
///
/// Threading: called by whichever thread carries out settlements (see `Broker`), never two at once.
public protocol ResultBackend: AnyObject, Sendable {
    /// Stores and announces each result, in order. A stored SUCCESS is never overwritten.
    func store(_ results: [ResultMeta]) throws

    /// The ids among `taskIds` whose stored result is SUCCESS.
    func succeeded(among taskIds: [String]) throws -> Set<String>

    /// Closes connections.
    func close()
}
