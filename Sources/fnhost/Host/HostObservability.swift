import CeleryProtocol
import FnHostCore
import FnHostObservability
import FnHostPool
import FnHostRedis
import Logging

/// The observability side of `fnhost serve`, wired for one host: metrics (always counted,
/// served on `--metrics-port` when given), `/healthz` and `/readyz`, Celery events and remote
/// control over the broker. HostRuntime creates it before the consumer starts and stops it
/// after the consumer has stopped.
final class HostObservability: @unchecked Sendable {
    struct Settings {
        var hostname: String
        var metricsPort: Int?
        var metricsHost: String
        var taskEvents: Bool
        var heartbeatInterval: Double
        var health: HealthPolicy
        var poolImplementation: String
        var maxTasksPerChild: Int?
        var configuration: JSONObject
        /// Message signing: remote-control requests must be signed, replies are signed.
        var signing: (any MessageSigning)? = nil
    }

    let metrics = MetricsRegistry()
    private let settings: Settings
    private let logger: Logger
    private let transport: any MonitoringTransport
    private let inspection: any BrokerInspection
    private let clock = LamportClock()
    private let shutdownLock = ConditionLock()
    private var shuttingDown = false
    private var server: MetricsServer?
    private var events: EventDispatcher?
    private var control: RemoteControl?
    private var consumer: Consumer?

    init(settings: Settings, transport: any MonitoringTransport, inspection: any BrokerInspection, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.transport = transport
        self.inspection = inspection
    }

    /// Hooks task metrics and events into the dispatcher, and process lifecycle into metrics.
    /// Call before the consumer starts.
    func attach(dispatcher: Dispatcher, executor: ProcessExecutor, registry: TaskRegistry) {
        let host = settings.hostname
        let events = EventDispatcher(transport: transport, hostname: host, clock: clock, taskEvents: settings.taskEvents,
                                     heartbeatInterval: settings.heartbeatInterval, logger: logger) {
            let s = dispatcher.snapshot()
            return .init(active: s.active.count, processed: s.totals.values.reduce(0, +))
        }
        self.events = events
        dispatcher.observer = TaskObservers([TaskMetrics(registry: metrics, hostname: host), events])
        let metrics = self.metrics
        executor.lifecycle = { event in
            switch event {
            case .recycled(let reason): metrics.increment(MetricNames.processRecycles, [host, reason])
            case .killed(let reason): metrics.increment(MetricNames.processKills, [host, reason])
            }
        }
        let plugins = Set(registry.functions.values.map(\.plugin))
        metrics.increment(MetricNames.pluginLoads, [host, "loaded"], by: Double(plugins.count))
        metrics.increment(MetricNames.pluginLoads, [host, "failed"], by: Double(registry.failures.count))
        metrics.increment(MetricNames.pluginReloadFailures, [host], by: 0)
    }

    /// Counts a plugin version that failed its probe on a reload (the old one keeps serving).
    func reloadFailed() {
        metrics.increment(MetricNames.pluginReloadFailures, [settings.hostname])
    }

    /// Starts the metrics server (when `--metrics-port` is given), before the broker is
    /// reached: until the consumer runs, `/readyz` says so and `/healthz` passes.
    func startServer(dispatcher: Dispatcher, executor: ProcessExecutor, registry: TaskRegistry) throws {
        let host = settings.hostname
        let inspection = self.inspection
        metrics.onCollect { [self] m in
            let s = dispatcher.snapshot()
            let health = consumerHealth
            m.set(MetricNames.workerUp, [host], health.running && !isShuttingDown ? 1 : 0)
            m.set(MetricNames.workerTasksActive, [host], Double(s.active.count))
            m.set(MetricNames.tasksReserved, [host], Double(s.reserved.count))
            m.set(MetricNames.tasksScheduled, [host], Double(s.scheduled.count))
            m.set(MetricNames.functionsLoaded, [host], Double(dispatcher.currentRegistry.functions.count))
            m.set(MetricNames.brokerConnected, [host], health.brokerConnected ? 1 : 0)
            m.set(MetricNames.consumerStall, [host], max(0, monotonicNow() - health.lastProgress))
            let states = executor.processStates
            m.set(MetricNames.workerProcesses, [host, "busy"], Double(states.busy))
            m.set(MetricNames.workerProcesses, [host, "idle"], Double(states.idle))
            m.set(MetricNames.workerProcesses, [host, "stopping"], Double(states.stopping))
            m.set(MetricNames.brokerReconnects, [host], Double(inspection.reconnects))
            if let lengths = try? inspection.queueLengths(s.queues) {
                m.reset(MetricNames.queueLength)
                for (queue, n) in lengths { m.set(MetricNames.queueLength, [queue], Double(n)) }
            }
            if let n = try? inspection.deadLetterDepth() { m.set(MetricNames.deadLetterDepth, [], Double(n)) }
            if let n = try? inspection.delayedDepth() { m.set(MetricNames.delayedDepth, [], Double(n)) }
        }
        if let port = settings.metricsPort {
            let server = MetricsServer(host: settings.metricsHost, port: port, logger: logger) { [self] path in
                respond(path, dispatcher: dispatcher, functions: dispatcher.currentRegistry.functions.count)
            }
            do { try server.start() } catch { throw FnHostError(error.description) }
            self.server = server
            logger.info("metrics on http://\(settings.metricsHost):\(server.port)/metrics (also /healthz, /readyz)")
        }
    }

    /// The consumer runs: starts events (`worker-online`, heartbeats) and remote control.
    func consumerStarted(_ consumer: Consumer, dispatcher: Dispatcher, executor: ProcessExecutor, registry: TaskRegistry,
                         declareQueue: @escaping @Sendable (String) throws -> Void, shutdown: @escaping @Sendable () -> Void) {
        shutdownLock.withLock { self.consumer = consumer }
        let host = settings.hostname
        guard let events else { return }
        events.start()
        let context = RemoteControl.Context(
            hostname: host, dispatcher: dispatcher, registry: registry, events: events, inspection: inspection,
            poolImplementation: settings.poolImplementation, maxTasksPerChild: settings.maxTasksPerChild,
            configuration: settings.configuration,
            workerPids: { executor.workerPids }, workerPid: { executor.workerPid(ofTask: $0) },
            declareQueue: declareQueue, resizePool: { executor.setMaxProcesses($0) }, shutdown: shutdown,
            signing: settings.signing)
        let control = RemoteControl(transport: transport, context: context, clock: clock, logger: logger)
        control.start()
        self.control = control
    }

    private var isShuttingDown: Bool { shutdownLock.withLock { shuttingDown } }

    /// The consumer's health; before it starts (the broker not reached yet): running, never
    /// connected, progress now, so liveness passes and readiness fails.
    private var consumerHealth: Consumer.Health {
        shutdownLock.withLock { consumer }?.health ?? Consumer.Health(lastProgress: monotonicNow(), brokerConnected: false, running: true)
    }

    private func facts(dispatcher: Dispatcher, functions: Int) -> HealthPolicy.Facts {
        let health = consumerHealth
        let s = dispatcher.snapshot()
        let waiting = (try? inspection.queueLengths(s.queues)).map { $0.values.reduce(0, +) }
        return HealthPolicy.Facts(consumerRunning: health.running, secondsSinceProgress: monotonicNow() - health.lastProgress,
                                  brokerConnected: health.brokerConnected, waitingMessages: waiting,
                                  freeSlots: max(0, s.concurrency - s.active.count), functionsLoaded: functions,
                                  shuttingDown: isShuttingDown)
    }

    private func respond(_ path: String, dispatcher: Dispatcher, functions: Int) -> MetricsServer.Response {
        switch path {
        case "/metrics":
            return .init(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.exposition())
        case "/healthz", "/livez":
            let v = settings.health.liveness(facts(dispatcher: dispatcher, functions: functions))
            return .init(status: v.ok ? 200 : 503, body: v.reason + "\n")
        case "/readyz":
            let v = settings.health.readiness(facts(dispatcher: dispatcher, functions: functions))
            return .init(status: v.ok ? 200 : 503, body: v.reason + "\n")
        default:
            return .init(status: 404, body: "not found: try /metrics, /healthz or /readyz\n")
        }
    }

    /// Warm shutdown began: stop answering remote control; readiness fails from now on.
    func shutdownBegan() {
        shutdownLock.withLock { shuttingDown = true }
        control?.stop()
    }

    /// After the consumer and the pools have stopped: `worker-offline`, then close everything.
    func stop() {
        control?.stop()
        events?.stop()
        server?.stop()
        transport.close()
    }
}
