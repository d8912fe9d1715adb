import ArgumentParser
import CeleryProtocol
import Dispatch
import FnHostCore
import FnHostPlugins
import FnHostPool
import FnHostRedis
import FnHostSecurity
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The host process of `fnhost serve`: wires plugins, worker pools, the broker, the dispatcher
/// and the outcome handler together, runs until SIGTERM/SIGINT, and shuts down in two phases.
///
/// Warm shutdown (first SIGTERM or SIGINT): stop fetching; give every delivery not yet started
/// back to its queue; let running tasks finish and settle, for up to the grace period.
/// Cold shutdown (a second signal, SIGQUIT, or the grace period over): running tasks are abandoned and
/// their deliveries given back to the queue (with `acks_late`, the default) to run again
/// elsewhere: at-least-once, never lost. Either way worker processes are told to exit (their
/// plugins' `fnhost_plugin_fini` runs) and the process exits 0.
final class HostRuntime: @unchecked Sendable {
    struct Settings {
        var functionsDirectory: String
        var stateDirectory: String
        var brokerURL: String
        var backendURL: String
        var concurrency: Int
        var prefetchMultiplier: Int
        var sharedQueues: [String]
        var hostname: String
        var resultExpires: Int
        var taskOverrides: [String: JSONObject]
        var gracePeriod: Double
        /// kombu's `visibility_timeout`: deliveries unacknowledged for longer, and not held by
        /// this host, are put back in their queues (a host that died leaves them there).
        var visibilityTimeout: Double
        /// fnhost's Redis delivery lease (`fnhost_lease_timeout`): renewed every third of it while
        /// a delivery is held; once expired, a host serving the delivery's queue restores it.
        var leaseTimeout: Double
        /// `--max-tasks-per-child`, `--max-memory-per-child`: when a worker process is replaced.
        var recycle: RecyclePolicy
        /// `--idle-timeout`, `--autoscale`'s MIN: when idle worker processes are shut down.
        var idle: IdlePolicy
        /// prefork or threads.
        var pool: PoolKind
        /// Acknowledge without running a redelivered message whose task already succeeded.
        var deduplicateSuccessfulTasks: Bool
        var pluginLogLevel: Int32
        /// RabbitMQ-only settings: heartbeat, TLS, queue arguments.
        var amqp = Transports.AMQPSettings()
        /// `broker_use_ssl` and `redis_backend_use_ssl`, for `rediss://` URLs.
        var brokerTLS: TLSOptions?
        var backendTLS: TLSOptions?
        /// `--allow-untrusted-plugins`: skip the plugin trust checks (development only).
        var allowUntrustedPlugins = false
        /// `task_routes`: where follow-up messages (chain steps, callbacks, chord bodies) of
        /// tasks this host does not serve go, before the default queue `celery`.
        var taskRoutes: [(pattern: String, queue: String)] = []
        /// Message signing (`security_*`): verify every message, sign what is published.
        var security: SecuritySettings?
        /// `result_serializer: auth`: sign the results too.
        var signResults = false
        /// `worker_max_message_size` (`--max-message-size`): larger messages are dead-lettered unread.
        var limits = MessageLimits()
        /// Metrics, health, events and remote control (see HostObservability).
        var observability: HostObservability.Settings
    }

    let settings: Settings
    let logger: Logger
    private let signals = ConditionLock()
    private var signalCount = 0
    /// Set once the runtime has settled everything: the lease thread stops renewing.
    private let leases = ConditionLock()
    private var leasesStopped = false
    /// Kept for the life of the runtime: a released source stops delivering signals.
    private var signalSources: [DispatchSourceSignal] = []
    /// What SIGHUP does (reload the plugins), once set.
    private var hangup: (@Sendable () -> Void)?

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    func run() throws -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let signing = try loadSigning()
        let transports = try Transports.make(brokerURL: settings.brokerURL, backendURL: settings.backendURL,
                                             resultExpires: settings.resultExpires, amqp: settings.amqp,
                                             brokerTLS: settings.brokerTLS, backendTLS: settings.backendTLS,
                                             leaseTimeout: settings.leaseTimeout, limits: settings.limits, logger: logger,
                                             resultSigning: settings.signResults ? signing : nil)
        signalSources = installSignalHandlers()

        let executable = WorkerProcess.workerExecutable()
        if executable == WorkerProcess.currentExecutable() {
            logger.warning("fnhost-worker is not beside \(executable): worker processes run `fnhost worker`, about twice the memory each (build it: swift build --product fnhost-worker)")
        }
        let box = ExecutorBox()
        let threads = settings.pool == .threads ? settings.concurrency : 1
        let loader = PluginLoader(functionsDirectory: settings.functionsDirectory, stateDirectory: settings.stateDirectory,
                                  executable: executable, logLevel: settings.pluginLogLevel, threads: threads,
                                  trust: PluginTrust(policy: settings.allowUntrustedPlugins ? .allowUntrusted : .enforce))
        let catalog = PluginCatalog.discover(loader, logger: logger, events: { process, event in box.executor?.events(process, event) })
        var registry = catalog.registry
        for error in registry.applyOverrides(settings.taskOverrides) { logger.error("config: \(error)") }
        let table = GenerationTable(loader: loader, serving: catalog.privatePaths.filter { path in catalog.registry.functions.values.contains { $0.plugin == path.key } })
        let executor = ProcessExecutor(maxProcesses: settings.concurrency, tasksPerProcess: threads, recycle: settings.recycle,
                                       idle: settings.idle, logger: logger, isCurrent: { table.isCurrent($0) }) { plugin in table.spec(for: plugin) }
        box.executor = executor
        for probe in catalog.probes { executor.adopt(probe) }

        let broker = transports.broker
        let backend = transports.backend
        let canvas = Canvas(router: TaskRouter(registry: registry, routes: settings.taskRoutes), origin: settings.hostname,
                            supportsChords: backend is any ChordBackend)
        let outcomes = OutcomeHandler(broker: broker, backend: backend, logger: logger, canvas: canvas, signing: signing)
        outcomes.start()
        let dispatcher = Dispatcher(
            registry: registry,
            configuration: .init(concurrency: settings.concurrency, prefetchMultiplier: settings.prefetchMultiplier,
                                 sharedQueues: settings.sharedQueues),
            executor: executor, outcomes: outcomes, logger: logger, canvas: canvas, signing: signing)

        if let amqp = transports.amqpBroker {
            let limits = dispatcher.prefetchLimits
            amqp.setPrefetch(perQueue: limits.perQueue, total: limits.total)
        }
        var observabilitySettings = settings.observability
        observabilitySettings.signing = signing
        let observability = HostObservability(settings: observabilitySettings, transport: transports.monitoring,
                                              inspection: transports.inspection, logger: logger)
        observability.attach(dispatcher: dispatcher, executor: executor, registry: registry)
        do { try observability.startServer(dispatcher: dispatcher, executor: executor, registry: registry) } catch {
            executor.shutdown(timeout: 5)
            outcomes.stop()
            throw error
        }

        var delay = 0.2
        while true {
            do {
                try broker.declare(queues: dispatcher.queues)
                break
            } catch {
                logger.error("cannot reach the broker at \(transports.brokerDescription), retrying in \(delay)s: \(error)")
                if waitForSignal(timeout: delay) {
                    executor.shutdown(timeout: 5)
                    outcomes.stop()
                    observability.stop()
                    return 0
                }
                delay = min(delay * 2, 5)
            }
        }
        let consumer = Consumer(broker: broker, dispatcher: dispatcher, logger: logger,
                                deduplicateWith: settings.deduplicateSuccessfulTasks ? backend : nil)
        consumer.start()
        let reloading = startReloading(loader: loader, catalog: catalog, table: table, executor: executor, dispatcher: dispatcher,
                                       broker: broker, overrides: settings.taskOverrides,
                                       reloadFailed: { _ in observability.reloadFailed() })
        observability.consumerStarted(consumer, dispatcher: dispatcher, executor: executor, registry: registry,
                                      declareQueue: { try broker.declare(queues: [$0]) }, shutdown: { [self] in requestShutdown() })
        if let redis = transports.redisBroker {
            startRestoreSweeps(broker: redis, dispatcher: dispatcher)
            startLeases(broker: redis, dispatcher: dispatcher)
            startDelayedMover(broker: redis)
        }
        let functions = registry.sorted.map(\.name)
        logger.info("fnhost ready: \(settings.hostname), \(functions.count) functions [\(functions.joined(separator: ", "))], queues [\(dispatcher.queues.joined(separator: ", "))], concurrency \(settings.concurrency), pool \(settings.pool.rawValue), broker \(transports.brokerDescription), backend \(transports.backendDescription)")
        if !registry.failures.isEmpty {
            logger.warning("\(registry.failures.count) plugin(s) failed to load: \(registry.failures.map(\.plugin).joined(separator: ", "))")
        }

        _ = waitForSignal(timeout: nil)
        logger.info("warm shutdown: no new tasks; waiting up to \(settings.gracePeriod)s for \(dispatcher.runningCount) running task(s)")
        // Drain first: from here no task starts, and a fetch still under way is given back.
        // Only then stop remote control (its stop waits up to one receive timeout).
        let unstarted = dispatcher.drain()
        observability.shutdownBegan()
        consumer.stop()
        for delivery in unstarted { outcomes.submit(Settlement(delivery: delivery, disposition: .requeue)) }
        if !unstarted.isEmpty { logger.info("gave \(unstarted.count) unstarted deliveries back to their queues") }
        reloading.stop()

        let deadline = monotonicNow() + settings.gracePeriod
        var idle = false
        while !idle {
            idle = dispatcher.waitUntilIdle(timeout: 0.2)
            if idle || monotonicNow() >= deadline || signals.withLock({ signalCount }) >= 2 { break }
        }
        if !idle {
            let abandoned = dispatcher.abandonRunning()
            logger.warning("cold shutdown: \(abandoned) running task(s) abandoned; their deliveries go back to the queue")
        }
        executor.shutdown(timeout: idle ? 10 : 2)
        if !outcomes.flush(timeout: 30) { logger.error("some outcomes could not be written before exit; their deliveries stay unacknowledged") }
        outcomes.stop()
        leases.withLock {
            leasesStopped = true
            leases.broadcast()
        }
        observability.stop()
        broker.close()
        backend.close()
        logger.info("fnhost stopped")
        return 0
    }

    /// Runs kombu's visibility-timeout restore now and then every `visibilityTimeout / 2`
    /// seconds (between 1 and 60), until shutdown.
    private func startRestoreSweeps(broker: RedisBroker, dispatcher: Dispatcher) {
        let interval = min(60, max(1, settings.visibilityTimeout / 2))
        let timeout = settings.visibilityTimeout
        let logger = self.logger
        startDetachedThread(name: "fnhost-restore") { [self] in
            repeat {
                do {
                    let restored = try broker.restoreTimedOut(visibilityTimeout: timeout, holding: dispatcher.heldTags())
                    if restored > 0 { logger.warning("restored \(restored) deliveries unacknowledged for more than \(timeout)s (visibility_timeout) to their queues") }
                } catch {
                    logger.error("visibility-timeout restore failed: \(error)")
                }
            } while !waitForSignal(timeout: interval)
        }
    }

    /// Renews the leases of every delivery this host holds, and restores the deliveries of its
    /// queues whose lease expired (their host died), every third of the lease (0.5 to 10 s).
    /// Renewal goes on through warm and cold shutdown, until the runtime ends, so no running
    /// task's delivery is restored under it.
    private func startLeases(broker: RedisBroker, dispatcher: Dispatcher) {
        let interval = min(10, max(0.5, settings.leaseTimeout / 3))
        let logger = self.logger
        startDetachedThread(name: "fnhost-leases") { [self] in
            while true {
                do {
                    try broker.renewLeases(dispatcher.heldTags())
                    // The queues served now: a hot reload may have added or removed some.
                    let restored = try broker.restoreExpiredLeases(queues: Set(dispatcher.queues), holding: dispatcher.heldTags())
                    if restored > 0 { logger.warning("restored \(restored) deliveries whose lease expired (their host is gone) to their queues") }
                } catch {
                    logger.error("renewing or sweeping delivery leases failed: \(error)")
                }
                let until = monotonicNow() + interval
                let stop = leases.withLock {
                    while !leasesStopped, leases.wait(until: until) {}
                    return leasesStopped
                }
                if stop { return }
            }
        }
    }

    /// Moves due messages from the durable delayed store back to their queues, every 0.25 s.
    private func startDelayedMover(broker: RedisBroker) {
        let logger = self.logger
        startDetachedThread(name: "fnhost-delayed") { [self] in
            repeat {
                do {
                    let moved = try broker.moveDueDelayed()
                    if moved > 0 { logger.debug("moved \(moved) due delayed messages back to their queues") }
                } catch {
                    logger.error("moving due delayed messages failed: \(error)")
                }
            } while !waitForSignal(timeout: 0.25)
        }
    }

    private func installSignalHandlers() -> [DispatchSourceSignal] {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "fnhost.signals")
        signal(SIGHUP, SIG_IGN)
        let hangupSource = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hangupSource.setEventHandler { [self] in signals.withLock { hangup }?() }
        hangupSource.resume()
        // SIGQUIT is Celery's cold shutdown: it counts as two shutdown signals at once.
        signal(SIGQUIT, SIG_IGN)
        return [hangupSource] + [SIGTERM, SIGINT, SIGQUIT].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [self] in
                signals.withLock {
                    signalCount += sig == SIGQUIT ? 2 : 1
                    signals.broadcast()
                }
            }
            source.resume()
            return source
        }
    }

    /// Sets what SIGHUP does.
    func setHangupHandler(_ handler: @escaping @Sendable () -> Void) {
        signals.withLock { hangup = handler }
    }

    /// A warm shutdown asked for from inside (the `shutdown` remote-control command), as SIGTERM.
    private func requestShutdown() {
        signals.withLock {
            signalCount += 1
            signals.broadcast()
        }
    }

    /// Waits for a shutdown signal; true when one arrived.
    private func waitForSignal(timeout: Double?) -> Bool {
        signals.withLock {
            let deadline = timeout.map { monotonicNow() + $0 }
            while signalCount == 0 {
                if let deadline {
                    if !signals.wait(until: deadline) { return signalCount > 0 }
                } else {
                    signals.wait()
                }
            }
            return true
        }
    }
}

/// Lets plugin probes, started before the executor exists, report to it once it does.
final class ExecutorBox: @unchecked Sendable {
    private let lock = ConditionLock()
    private var value: ProcessExecutor?
    var executor: ProcessExecutor? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
