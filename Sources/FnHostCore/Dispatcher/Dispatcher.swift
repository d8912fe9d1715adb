import CeleryProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// This machine's host name (for STARTED results).
let processHostname: String = {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}()

/// The host's decision-maker: from message headers alone it decides whether a delivery runs,
/// fails, waits for its ETA or is dropped, and it starts tasks only where a slot is free.
///
/// Capacity: at most `concurrency` tasks run at once in all, and at most a function's own
/// `concurrency` option of that function. Prefetch: at most `concurrency x prefetchMultiplier`
/// deliveries are held (reserved or running), and at most `min(function concurrency,
/// concurrency) x prefetchMultiplier` of one function; `fetchPlan()` asks only for what fits,
/// so nothing is fetched that has nowhere to run. Deliveries held for an ETA do not count.
///
/// ETA: a task due within `delayedStoreHorizon` is held in memory (unacknowledged) until due;
/// one due later goes to the broker's durable delayed store and is acknowledged, so it is never
/// redelivered by a visibility timeout (Redis) or cut by `consumer_timeout` (RabbitMQ) while
/// it waits: Celery's duplicate-ETA flaw does not exist here.
///
/// Threading: every method may be called from any thread; state is behind one lock, and the
/// executor and the outcome handler are always called with the lock released.
public final class Dispatcher: @unchecked Sendable {
    /// Settings of the dispatcher, with Celery's names.
    public struct Configuration: Sendable {
        /// The most tasks running at once (`-c/--concurrency`).
        public var concurrency: Int
        /// `worker_prefetch_multiplier`.
        public var prefetchMultiplier: Int
        /// Extra queues every function consumes (`-Q`), besides its own.
        public var sharedQueues: [String]
        /// ETAs further away than this many seconds go to the broker's durable delayed store
        /// (and are acknowledged); nearer ones are held in memory. `nil` holds every ETA in memory.
        public var delayedStoreHorizon: Double?

        public init(concurrency: Int, prefetchMultiplier: Int = 4, sharedQueues: [String] = [], delayedStoreHorizon: Double? = 5) {
            self.concurrency = max(1, concurrency)
            self.prefetchMultiplier = max(1, prefetchMultiplier)
            self.sharedQueues = sharedQueues
            self.delayedStoreHorizon = delayedStoreHorizon
        }
    }

    enum Phase { case running, draining, abandoning }

    var registry: TaskRegistry
    var configuration: Configuration
    let executor: any TaskExecutor
    let outcomes: OutcomeHandler
    let canvas: Canvas?
    /// Message signing (`task_serializer: auth`): when set, only messages signed by a
    /// certificate of the store run; every other message goes to the dead-letter queue.
    let signing: (any MessageSigning)?
    let logger: Logger
    let clock: @Sendable () -> Double
    let lock = ConditionLock()

    var phase = Phase.running
    var reserved: [String: [TaskRequest]] = [:]
    var running: [String: Int] = [:]
    var held: [String: Int] = [:]
    var totalRunning = 0
    var totalHeld = 0
    /// Delivery tags of tasks that finished and whose settlement is not submitted yet (at most
    /// about the concurrency: an array is cheaper here than a set).
    var finishing: [String] = []
    var scheduled: [String: TaskRequest] = [:]
    /// Running requests by delivery tag, with when they started (epoch seconds).
    var runningRequests: [String: (request: TaskRequest, startedAt: Double)] = [:]
    /// Revoked task ids (`revoke`), oldest first, at most `maxRevoked`: Celery's LimitedSet.
    var revokedIds: Set<String> = []
    var revokedOrder: [String] = []
    /// Ids whose worker process `revoke(terminate=True)` killed: their loss is a revocation.
    var terminating: [String: Int32] = [:]
    /// Tasks finished since start, by name (`stats()['total']`).
    var totals: [String: Int] = [:]
    /// Limits set by remote control (`time_limit`), by task name.
    var timeLimitOverrides: [String: (hard: Double?, soft: Double?)] = [:]
    /// The most revoked ids remembered (Celery's `REVOKES_MAX`).
    public static let maxRevoked = 50_000
    /// Rate-limited functions' buckets (`rate_limit`), and when a wake-up to start them is due.
    var buckets: [String: TokenBucket] = [:]
    private var rateWakeup: Double?
    var queueOrder: [String]
    /// Every queue consumed, with the functions that consume it (`nil`: all of them).
    var queueFunctions: [String: Set<String>?]
    /// Function names in the order `pump` serves them (rotated for fairness).
    var functionOrder: [String]

    public init(registry: TaskRegistry, configuration: Configuration, executor: any TaskExecutor,
                outcomes: OutcomeHandler, logger: Logger, clock: @escaping @Sendable () -> Double = CeleryTime.now,
                canvas: Canvas? = nil, signing: (any MessageSigning)? = nil) {
        self.canvas = canvas
        self.signing = signing
        self.registry = registry
        self.configuration = configuration
        self.executor = executor
        self.outcomes = outcomes
        self.logger = logger
        self.clock = clock
        self.queueFunctions = Self.queueFunctions(registry, sharedQueues: configuration.sharedQueues)
        self.queueOrder = queueFunctions.keys.sorted()
        self.functionOrder = registry.functions.keys.sorted()
        let now = clock()
        for f in registry.functions.values {
            if let text = f.options.rateLimit, let limit = RateLimit(parsing: text) {
                buckets[f.name] = TokenBucket(limit: limit, now: now)
            }
        }
    }

    /// Every queue consumed, with the functions that consume it (`nil`: all of them).
    private static func queueFunctions(_ registry: TaskRegistry, sharedQueues: [String]) -> [String: Set<String>?] {
        var queues: [String: Set<String>?] = [:]
        for f in registry.functions.values {
            if case .some(.some(var names)) = queues[f.queue] {
                names.insert(f.name)
                queues[f.queue] = .some(names)
            } else if queues[f.queue] == nil {
                queues[f.queue] = .some([f.name])
            }
        }
        for q in sharedQueues { queues[q] = .some(nil) }
        return queues
    }

    /// Every queue the host consumes.
    public var queues: [String] { lock.withLock { queueOrder.sorted() } }

    /// The functions served now.
    public var currentRegistry: TaskRegistry { lock.withLock { registry } }

    // MARK: Hot reload

    /// Serves `new` from now on (a hot reload): deliveries fetched from now on are decided by
    /// it, and the consumer fetches from its queues. Deliveries already reserved and not yet
    /// started run as the function of that name in `new` (its new generation, options and
    /// plugin); those whose function is no longer served are given back to their queue, never
    /// lost. Running tasks finish where they run. Returns the queues consumed now.
    @discardableResult
    public func replaceRegistry(_ new: TaskRegistry) -> [String] {
        var giveBack: [Delivery] = []
        let queues: [String] = lock.withLock {
            registry = new
            queueFunctions = Self.queueFunctions(new, sharedQueues: configuration.sharedQueues)
            queueOrder = queueFunctions.keys.sorted()
            functionOrder = new.functions.keys.sorted()
            let now = clock()
            var newBuckets: [String: TokenBucket] = [:]
            for f in new.functions.values {
                guard let text = f.options.rateLimit, let limit = RateLimit(parsing: text) else { continue }
                newBuckets[f.name] = buckets[f.name].flatMap { $0.limit == limit ? $0 : nil } ?? TokenBucket(limit: limit, now: now)
            }
            buckets = newBuckets
            for (name, queue) in reserved {
                if let function = new[name] {
                    reserved[name] = queue.map { TaskRequest(delivery: $0.delivery, message: $0.message, function: function) }
                } else {
                    giveBack.append(contentsOf: queue.map(\.delivery))
                    held[name, default: 0] -= queue.count
                    totalHeld -= queue.count
                    reserved[name] = nil
                }
            }
            lock.broadcast()
            return queueOrder.sorted()
        }
        if !giveBack.isEmpty { logger.info("gave \(giveBack.count) deliveries of functions no longer served back to their queues") }
        for delivery in giveBack { outcomes.submit(Settlement(delivery: delivery, disposition: .requeue)) }
        pump()
        // A fetch waiting on the old queues (a Redis doorbell wait, up to the poll timeout) is
        // cut short, so a new plugin's queues are fetched from at once.
        onQueueRoomFreed?()
        return queues
    }

    /// The most deliveries the host holds from each queue (its functions' concurrency x
    /// `worker_prefetch_multiplier`; a shared queue, the whole host's), and in all: the
    /// prefetch windows a push broker (RabbitMQ's `basic.qos`) is given.
    public var prefetchLimits: (perQueue: [String: Int], total: Int) {
        lock.withLock { makePrefetchLimits() }
    }

    private func makePrefetchLimits() -> (perQueue: [String: Int], total: Int) {
        let total = configuration.concurrency * configuration.prefetchMultiplier
        var perQueue: [String: Int] = [:]
        for (queue, consumers) in queueFunctions {
            if let names = consumers {
                perQueue[queue] = min(total, names.map { limit(of: $0) * configuration.prefetchMultiplier }.max() ?? total)
            } else {
                perQueue[queue] = total
            }
        }
        return (perQueue, total)
    }

    /// Receives every task event (metrics, Celery events). Set it before the consumer starts.
    nonisolated(unsafe) public var observer: (any TaskObserver)?

    /// Called when a function that held all its prefetch window frees a place (its queue was
    /// left out of the fetch plan), and after a reload replaced the registry (its queues may be
    /// new): a fetch waiting on the other queues should plan again (the consumer sets it to
    /// `Broker.fetchPlanWidened`). Set it before the consumer starts.
    nonisolated(unsafe) public var onQueueRoomFreed: (@Sendable () -> Void)?

    private func limit(of function: String) -> Int {
        limit(registry[function]?.options)
    }

    /// The most tasks of a function with `options` that run at once.
    private func limit(_ options: TaskOptions?) -> Int {
        min(options?.concurrency ?? configuration.concurrency, configuration.concurrency)
    }

    // MARK: Fetching

    /// What may be fetched now, or `nil` when nothing fits (or the host is draining).
    public func fetchPlan() -> FetchPlan? {
        lock.withLock { makePlan() }
    }

    /// Waits up to `timeout` seconds for capacity, then returns the plan (or `nil`).
    public func waitForFetchPlan(timeout: Double) -> FetchPlan? {
        let deadline = monotonicNow() + timeout
        return lock.withLock {
            while true {
                if let plan = makePlan() { return plan }
                if phase == .draining || !lock.wait(until: deadline) { return nil }
            }
        }
    }

    private func makePlan() -> FetchPlan? {
        guard phase == .running else { return nil }
        let room = configuration.concurrency * configuration.prefetchMultiplier - totalHeld
        guard room > 0 else { return nil }
        var entries: [FetchPlan.Entry] = []
        for queue in queueOrder {
            guard let consumers = queueFunctions[queue] else { continue }
            let queueRoom: Int
            if let names = consumers {
                queueRoom = names.map { limit(of: $0) * configuration.prefetchMultiplier - (held[$0] ?? 0) }.max() ?? 0
            } else {
                queueRoom = room
            }
            if queueRoom > 0 { entries.append(.init(queue: queue, limit: min(queueRoom, room))) }
        }
        guard !entries.isEmpty else { return nil }
        if queueOrder.count > 1 { queueOrder.append(queueOrder.removeFirst()) }
        return FetchPlan(entries: entries, total: room)
    }

    // MARK: Receiving

    /// Takes fetched deliveries: each is settled at once (undecodable, unknown task, expired),
    /// scheduled for its ETA, or reserved to run. Once shutdown has begun, deliveries are given back.
    ///
    /// A delivery whose task id is in `alreadySucceeded` (a redelivery of a task whose SUCCESS
    /// is stored) is acknowledged without running again, unless it belongs to a group (a chord
    /// part is counted after the result is stored, so it must be counted again).
    public func received(_ deliveries: [Delivery], alreadySucceeded: Set<String> = []) {
        var settlements: [Settlement] = []
        var scheduleLater: [(TaskRequest, Double)] = []
        var events: [TaskEvent] = []
        let now = clock()
        // Signatures are checked before the lock is taken (RSA costs tens of microseconds).
        let verdicts: [Result<TaskMessage, RefusedMessage>?] = deliveries.map { delivery in
            guard signing != nil, case .success(let m) = delivery.message else { return nil }
            return authenticated(m, delivery)
        }
        lock.withLock {
            for (delivery, verdict) in zip(deliveries, verdicts) {
                if phase != .running {
                    settlements.append(Settlement(delivery: delivery, disposition: .requeue))
                    continue
                }
                // Fetched from a queue a hot reload stopped consuming while the fetch was under
                // way: not ours to decide any more, so it goes back, unchanged.
                if queueFunctions[delivery.queue] == nil {
                    settlements.append(Settlement(delivery: delivery, disposition: .requeue))
                    continue
                }
                // A group member runs again: its chord part may not have been counted before the
                // host that stored its SUCCESS died, and counting is idempotent.
                if case .success(let m) = delivery.message, alreadySucceeded.contains(m.id), m.group == nil, !Self.isRefusal(verdict) {
                    logger.info("task \(m.task)[\(m.id)] was redelivered but already succeeded: acknowledged without running it again", metadata: .task(m.task, m.id))
                    settlements.append(Settlement(delivery: delivery, disposition: .ack))
                    continue
                }
                switch classify(delivery, now: now, verdict: verdict) {
                case .settle(let settlement, let event):
                    settlements.append(settlement)
                    if let event { events.append(event) }
                case .run(let request):
                    reserve(request)
                    events.append(.received(request))
                case .schedule(let request, let eta):
                    scheduled[request.id + "\u{0}" + delivery.tag] = request
                    scheduleLater.append((request, eta))
                    events.append(.received(request))
                }
            }
        }
        if let observer {
            for event in events { observer.observe(event) }
        }
        for settlement in settlements { outcomes.submit(settlement) }
        for (request, eta) in scheduleLater { scheduleETA(request, at: eta) }
        pump()
    }

    private enum Decision {
        case settle(Settlement, TaskEvent? = nil)
        case run(TaskRequest)
        case schedule(TaskRequest, eta: Double)
    }

    /// `verdict`: with signing on, what `authenticated` said of the message (checked before
    /// the lock was taken).
    private func classify(_ delivery: Delivery, now: Double, verdict: Result<TaskMessage, RefusedMessage>?) -> Decision {
        let message: TaskMessage
        switch delivery.message {
        case .failure(let problem):
            let refused = TaskEvent.refused(queue: delivery.queue, taskId: problem.taskId, taskName: problem.taskName)
            // With signing on, an undecodable message was never verified: no result is written
            // (and signed) for the id it claims.
            guard let id = problem.taskId, signing == nil else {
                logger.error("an unreadable message from queue \(delivery.queue) goes to the dead-letter queue: \(problem.reason)")
                let reason = problem.taskId == nil ? problem.reason : "\(problem.exception.type): \(problem.reason)"
                return .settle(Settlement(delivery: delivery, disposition: .deadLetter(reason: reason)), refused)
            }
            logger.error("task \(problem.taskName ?? "?")[\(id)] from queue \(delivery.queue) cannot run: \(problem.reason)", metadata: .task(problem.taskName ?? "?", id))
            let traceback = Settlement.traceback(problem.exception, context: "message \(id) from queue \(delivery.queue) cannot be decoded")
            return .settle(Settlement(delivery: delivery, results: [.exception(problem.exception, taskId: id, traceback: traceback)],
                                      disposition: .deadLetter(reason: "\(problem.exception.type): \(problem.reason)")), refused)
        case .success(let m):
            switch verdict ?? .success(m) {
            case .success(let opened): message = opened
            case .failure(let refusal):
                logger.error("message \(m.id) (task \(m.task), unverified) from queue \(delivery.queue) refused to the dead-letter queue: \(refusal.reason)",
                             metadata: .task(m.task, m.id))
                return .settle(Settlement(delivery: delivery, disposition: .deadLetter(reason: refusal.reason)),
                               .refused(queue: delivery.queue, taskId: m.id, taskName: m.task))
            }
        }
        guard var function = registry[message.task] else {
            logger.error("received unregistered task \(message.task)[\(message.id)] on queue \(delivery.queue): storing NotRegistered", metadata: .task(message.task, message.id))
            var meta = ResultMeta.exception(
                .notRegistered(message.task), taskId: message.id,
                traceback: Settlement.traceback(.notRegistered(message.task), context: "no function named \(message.task) is loaded"),
                groupId: message.group, parentId: message.parentId)
            meta.replyTo = message.replyTo
            return .settle(Settlement(
                delivery: delivery,
                results: message.ignoreResult == true ? [] : [meta],
                disposition: .deadLetter(reason: "NotRegistered: no function named \(message.task) is loaded")),
                .refused(queue: delivery.queue, taskId: message.id, taskName: message.task))
        }
        if let problem = message.contentProblem() {
            logger.error("task \(message.task)[\(message.id)] refused: \(problem.reason)", metadata: .task(message.task, message.id))
            let request = TaskRequest(delivery: delivery, message: message, function: function)
            return .settle(Settlement.of(request, outcome: .rejected(problem)), .rejected(request, requeue: false))
        }
        if let limits = timeLimitOverrides[function.name] {
            function.options.timeLimit = limits.hard
            function.options.softTimeLimit = limits.soft
        }
        let request = TaskRequest(delivery: delivery, message: message, function: function)
        if revokedIds.contains(message.id) {
            return .settle(revoked(request, expired: false), .revoked(request, expired: false, terminated: false, signum: nil))
        }
        if let expires = message.expires, expires <= now {
            return .settle(revoked(request), .revoked(request, expired: true, terminated: false, signum: nil))
        }
        if let eta = message.eta, eta > now + 0.001 {
            if let horizon = configuration.delayedStoreHorizon, eta > now + horizon, !delivery.tag.isEmpty {
                logger.debug("task \(message.task)[\(message.id)] has an ETA \(Int(eta - now))s away: moved to the delayed store", metadata: .task(message.task, message.id))
                return .settle(Settlement(delivery: delivery, disposition: .delay(until: eta)))
            }
            return .schedule(request, eta: eta)
        }
        return .run(request)
    }

    /// With signing required, the message with its signature verified and its body opened;
    /// anything else (unsigned, undecodable, unknown or expired signer, bad signature) is a
    /// refusal: to the dead-letter queue, never run and with no result stored, since an
    /// unverified message's headers cannot be trusted to name a task id to write to (the Python
    /// worker stores nothing for it either). Without signing, messages pass unchanged (a signed
    /// one is then refused by `contentProblem`, which says what to configure). Pure apart from
    /// the verification itself: called without the lock.
    private func authenticated(_ message: TaskMessage, _ delivery: Delivery) -> Result<TaskMessage, RefusedMessage> {
        guard let signing else { return .success(message) }
        guard message.isSigned else {
            return .failure(RefusedMessage(reason: "SecurityError: unsigned message refused: this host accepts only messages signed with Celery's auth serializer (task_serializer: auth); content type \(message.contentType.prefix(64))"))
        }
        do throws(SecurityError) {
            let opened = try signing.opened(message)
            guard !opened.isSigned else { throw SecurityError("a signed body inside a signed body") }
            return .success(opened)
        } catch {
            return .failure(RefusedMessage(reason: "SecurityError: \(error.reason)"))
        }
    }

    /// Why a message was not trusted: the dead-letter reason.
    struct RefusedMessage: Error {
        let reason: String
    }

    private static func isRefusal(_ verdict: Result<TaskMessage, RefusedMessage>?) -> Bool {
        if case .failure? = verdict { return true }
        return false
    }

    /// The settlement of a request revoked before it ran (expired, or its id revoked), or
    /// terminated while it ran: REVOKED stored, the delivery acknowledged. The caller reports
    /// the event (see `settleRevoked`).
    func revoked(_ request: TaskRequest, expired: Bool = true, terminatedBy signum: Int32? = nil) -> Settlement {
        let why = signum != nil ? "terminated" : expired ? "expired" : "revoked"
        logger.info("task \(request.name)[\(request.id)] \(signum != nil ? "was terminated" : expired ? "expired before it ran" : "was revoked before it ran"): storing REVOKED", metadata: .task(request.name, request.id))
        var meta = ResultMeta.exception(TaskException(type: "TaskRevokedError", module: "celery.exceptions", message: why),
                                        state: .revoked, taskId: request.id, groupId: request.message.group, parentId: request.message.parentId)
        meta.replyTo = request.message.replyTo
        return Settlement(delivery: request.delivery, results: request.storesResult ? [meta] : [], disposition: .ack)
    }

    /// Submits `revoked(...)` and reports it; call without the lock.
    func settleRevoked(_ request: TaskRequest, expired: Bool = true, terminatedBy signum: Int32? = nil) {
        let settlement = revoked(request, expired: expired, terminatedBy: signum)
        observer?.observe(.revoked(request, expired: expired && signum == nil, terminated: signum != nil, signum: signum))
        outcomes.submit(settlement)
    }

    func reserve(_ request: TaskRequest) {
        reserved[request.function.name, default: []].append(request)
        held[request.function.name, default: 0] += 1
        totalHeld += 1
    }

    /// ETA tasks are held unacknowledged in memory until due, as Celery's worker does.
    private func scheduleETA(_ request: TaskRequest, at eta: Double) {
        let key = request.id + "\u{0}" + request.delivery.tag
        let delay = max(0, eta - clock())
        startTimer(after: delay) { [weak self] in
            guard let self else { return }
            let ready: TaskRequest? = self.lock.withLock {
                guard self.phase == .running, let request = self.scheduled.removeValue(forKey: key) else { return nil }
                return request
            }
            guard let ready else { return }
            if let expires = ready.message.expires, expires <= self.clock() {
                self.settleRevoked(ready)
                return
            }
            if self.lock.withLock({ self.revokedIds.contains(ready.id) }) {
                self.settleRevoked(ready, expired: false)
                return
            }
            // A hot reload may have changed or removed the function while it waited.
            let reserved: Bool = self.lock.withLock {
                guard let function = self.registry[ready.name] else { return false }
                self.reserve(function == ready.function ? ready : TaskRequest(delivery: ready.delivery, message: ready.message, function: function))
                return true
            }
            if !reserved {
                self.logger.info("task \(ready.name)[\(ready.id)] is due but its function is no longer served: given back to its queue")
                self.outcomes.submit(Settlement(delivery: ready.delivery, disposition: .requeue))
                return
            }
            self.pump()
        }
    }

    // MARK: Running

    /// Starts every reserved request that has a free slot (and, when rate-limited, a token).
    func pump() {
        var starts: [TaskRequest] = []
        var wakeAfter: Double?
        let now = clock()
        lock.withLock {
            guard phase == .running || phase == .draining else { return }
            var progressed = true
            while progressed && totalRunning < configuration.concurrency {
                progressed = false
                for name in functionOrder {
                    guard totalRunning < configuration.concurrency else { break }
                    guard let waiting = reserved[name]?.count, waiting > 0, (running[name] ?? 0) < limit(of: name) else { continue }
                    if var bucket = buckets[name] {
                        let wait = bucket.take(now: now)
                        buckets[name] = bucket
                        if wait > 0 {
                            wakeAfter = min(wakeAfter ?? wait, wait)
                            continue
                        }
                    }
                    // Taken from the stored array in place: a copy of it (`var queue = reserved[name]`)
                    // would have copied every request still waiting, on every start.
                    let request = reserved[name]!.removeFirst()
                    runningRequests[request.delivery.tag] = (request, now)
                    starts.append(request)
                    running[name, default: 0] += 1
                    totalRunning += 1
                    progressed = true
                }
                if functionOrder.count > 1 { functionOrder.append(functionOrder.removeFirst()) }
            }
            // One pending wake-up at a time: the earliest a rate-limited function may start.
            if let wait = wakeAfter {
                let at = now + wait
                if let pending = rateWakeup, pending <= at + 1e-6 { wakeAfter = nil } else { rateWakeup = at }
            }
        }
        if let wait = wakeAfter {
            startTimer(after: wait) { [weak self] in
                guard let self else { return }
                self.lock.withLock { self.rateWakeup = nil }
                self.pump()
            }
        }
        for request in starts { start(request) }
    }

    /// STARTED, as Celery stores it with `track_started`: `{"pid": ..., "hostname": ...}`.
    static func startedMeta(_ request: TaskRequest) -> ResultMeta {
        let info: JSONObject = ["pid": .int(Int64(getpid())), "hostname": .string(processHostname)]
        var meta = ResultMeta(status: .started, resultJSON: JSONWriter.bytes(.object(info)), taskId: request.id,
                              groupId: request.message.group, parentId: request.message.parentId)
        meta.replyTo = request.message.replyTo
        return meta
    }

    private func start(_ request: TaskRequest) {
        let revokedNow = lock.withLock { revokedIds.contains(request.id) }
        if revokedNow || (request.message.expires.map { $0 <= clock() } ?? false) {
            finishBookkeeping(request)
            settleRevoked(request, expired: !revokedNow)
            pump()
            return
        }
        if !request.function.options.acksLate {
            outcomes.submit(Settlement(delivery: request.delivery, disposition: .ack))
        }
        if request.function.options.trackStarted && request.storesResult {
            outcomes.submit(Settlement(delivery: nil, results: [Self.startedMeta(request)], disposition: .none))
        }
        logger.debug("task \(request.name)[\(request.id)] started", metadata: .task(request.name, request.id))
        observer?.observe(.started(request))
        executor.execute(request) { [self] outcome in finished(request, outcome: outcome) }
    }

    private func finished(_ request: TaskRequest, outcome: TaskOutcome) {
        let startedAt = finishBookkeeping(request, settling: true)
        // Until its settlement is submitted (or carried out inline), the host is not idle, and
        // the delivery is still held (the outcome handler holds it from then on).
        defer {
            lock.withLock {
                if let i = finishing.firstIndex(of: request.delivery.tag) { finishing.remove(at: i) }
                lock.broadcast()
            }
        }
        let runtime = max(0, clock() - (startedAt ?? clock()))
        let terminatedBy: Int32? = lock.withLock {
            totals[request.name, default: 0] += 1
            return terminating.removeValue(forKey: request.id)
        }
        if let signum = terminatedBy, case .workerLost = outcome {
            settleRevoked(request, terminatedBy: signum)
            pump()
            return
        }
        switch outcome {
        case .success: logger.debug("task \(request.name)[\(request.id)] succeeded", metadata: .task(request.name, request.id))
        case .failure(let e, _): logger.info("task \(request.name)[\(request.id)] failed: \(e.type): \(e.message)", metadata: .task(request.name, request.id))
        case .workerLost(let how): logger.warning("task \(request.name)[\(request.id)]: worker process lost (\(how))", metadata: .task(request.name, request.id))
        case .timeLimitExceeded(let s): logger.warning("task \(request.name)[\(request.id)]: hard time limit (\(s)s) exceeded", metadata: .task(request.name, request.id))
        case .retry(let c, let r): logger.info("task \(request.name)[\(request.id)] asks for a retry in \(c.map { "\($0)s" } ?? "its default delay"): \(r)", metadata: .task(request.name, request.id))
        case .rejected(let p): logger.error("task \(request.name)[\(request.id)] rejected: \(p.reason)", metadata: .task(request.name, request.id))
        }
        let abandoning = lock.withLock { phase == .abandoning }
        if abandoning, case .workerLost = outcome {
            // Cold shutdown killed its worker: the task did not finish, so it runs again
            // elsewhere (with acks_late). A task that did finish is settled as usual below,
            // never run twice.
            if request.function.options.acksLate { outcomes.submit(Settlement(delivery: request.delivery, disposition: .requeue)) }
            return
        }
        var settlement = Settlement.of(request, outcome: outcome, now: clock())
        if let canvas {
            let succeeded = if case .succeeded? = settlement.finished { true } else { false }
            canvas.continue(&settlement, request: request)
            if succeeded, case .failed(let e, _)? = settlement.finished {
                logger.error("task \(request.name)[\(request.id)] succeeded but its canvas cannot continue, so it fails: \(e.type): \(e.message)")
            }
        }
        observer?.observe(TaskEvent.finished(request, outcome: outcome, settlement: settlement, runtime: runtime))
        pump()
        // A lone task (nothing else held) is settled on this thread, without waking the outcome
        // thread: the round trip of an idle host is shorter by one thread hand-off. Under load
        // the outcome thread batches settlements, so they take fewer broker round trips.
        if lock.withLock({ totalHeld == 0 }) {
            outcomes.submitAndSettle(settlement)
        } else {
            outcomes.submit(settlement)
        }
    }

    fileprivate func setAbandoning() -> Int {
        lock.withLock {
            phase = .abandoning
            return totalRunning
        }
    }

    /// Frees the request's slot; returns when it started (nil if it never ran). `settling`: the
    /// caller submits its settlement next (its tag is in `finishing` until it has).
    @discardableResult
    private func finishBookkeeping(_ request: TaskRequest, settling: Bool = false) -> Double? {
        let (startedAt, roomFreed) = lock.withLock { () -> (Double?, Bool) in
            if settling { finishing.append(request.delivery.tag) }
            let name = request.function.name
            let startedAt = runningRequests.removeValue(forKey: request.delivery.tag)?.startedAt
            // From the options it ran with: no registry lookup on every finish. After a hot
            // reload changed them, a wake-up is at worst spurious or a poll timeout late.
            let wasFull = (held[name] ?? 0) >= limit(request.function.options) * configuration.prefetchMultiplier
            running[name, default: 1] -= 1
            held[name, default: 1] -= 1
            totalRunning -= 1
            totalHeld -= 1
            lock.broadcast()
            return (startedAt, wasFull)
        }
        if roomFreed { onQueueRoomFreed?() }
        return startedAt
    }

    // MARK: Shutdown

    /// Stops fetching and takes back every delivery not started yet (reserved or waiting for an
    /// ETA), returning them to be given back to the broker. Running tasks go on.
    public func drain() -> [Delivery] {
        lock.withLock {
            phase = .draining
            var back: [Delivery] = []
            for (name, queue) in reserved {
                back.append(contentsOf: queue.map(\.delivery))
                held[name, default: 0] -= queue.count
                totalHeld -= queue.count
            }
            reserved = [:]
            back.append(contentsOf: scheduled.values.map(\.delivery))
            scheduled = [:]
            lock.broadcast()
            return back
        }
    }

    /// Waits until no task is running and every finished one's settlement is submitted to the
    /// outcome handler (so a `flush` after this covers them), up to `timeout` seconds; false on
    /// timeout.
    public func waitUntilIdle(timeout: Double) -> Bool {
        let deadline = monotonicNow() + timeout
        return lock.withLock {
            while totalRunning > 0 || !finishing.isEmpty {
                if !lock.wait(until: deadline) { return totalRunning == 0 && finishing.isEmpty }
            }
            return true
        }
    }

    /// Tasks running now.
    public var runningCount: Int { lock.withLock { totalRunning } }

    /// Delivery tags this host holds: reserved, waiting for an ETA, running, or finished and not
    /// yet settled (acknowledged, given back...) on the broker. A visibility or lease sweep must
    /// not give these back.
    ///
    /// A delivery passes from the dispatcher to the outcome handler without a gap (it is
    /// submitted before the dispatcher lets go of it), and the dispatcher's tags are read first:
    /// so a delivery missing from both was not fetched yet or is settled already.
    public func heldTags() -> Set<String> {
        var tags = lock.withLock {
            var tags = Set(scheduled.values.map(\.delivery.tag))
            for queue in reserved.values { tags.formUnion(queue.map(\.delivery.tag)) }
            tags.formUnion(runningRequests.keys)
            tags.formUnion(finishing)
            return tags
        }
        tags.formUnion(outcomes.settlingTags())
        return tags
    }
}

extension Dispatcher {
    /// Cold shutdown: every task still running whose worker process is then killed has its
    /// delivery given back to the queue (with `acks_late`) instead of failing with
    /// `WorkerLostError`; one that finishes first is settled as usual. Returns how many run now.
    public func abandonRunning() -> Int {
        setAbandoning()
    }
}
