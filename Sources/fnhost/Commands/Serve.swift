import ArgumentParser
import CeleryProtocol
import FnHostCore
import FnHostObservability
import FnHostPool
import FnHostSecurity

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost serve`: consume the functions' queues and run their tasks.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the functions directory to Celery producers.",
        discussion: """
            Settings come from flags, then the environment (CELERY_BROKER_URL, CELERY_RESULT_BACKEND, or the \
            FNHOST_* equivalents), then fnhost.yml, then the plugins' own defaults.
            """)

    @OptionGroup var plugins: PluginOptions

    @Option(name: .long, help: "Broker URL (redis://host:port/db, rediss://..., amqp://user:pass@host:port/vhost, amqps://...).")
    var broker: String?

    @Option(name: .long, help: "Result backend URL (redis://host:port/db, or rpc:// with an AMQP broker).")
    var backend: String?

    @Option(name: [.customShort("Q"), .long], help: "Extra queues every function consumes, comma-separated (e.g. celery).")
    var queues: String?

    @Option(name: [.customShort("c"), .long], help: "The most tasks running at once (default: the number of CPUs).")
    var concurrency: Int?

    @Option(name: [.customShort("n"), .long], help: "Node name (default: fnhost@<hostname>).")
    var hostname: String?

    @Option(name: .customLong("prefetch-multiplier"), help: "worker_prefetch_multiplier (default 4).")
    var prefetchMultiplier: Int?

    @Option(name: .customLong("metrics-port"), help: "Serve /metrics, /healthz and /readyz over HTTP on this port (0: any free port).")
    var metricsPort: Int?

    @Option(name: .customLong("metrics-host"), help: "Address the metrics server binds (default 0.0.0.0).")
    var metricsHost: String = "0.0.0.0"

    @Flag(name: [.customShort("E"), .customLong("task-events"), .customLong("events")], help: "Send Celery task events from the start (monitors such as Flower also turn them on with enable_events).")
    var taskEvents = false

    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between worker-heartbeat events (default 2).")
    var heartbeatInterval: Double = 2

    @Option(name: .customLong("liveness-timeout"), help: "/healthz fails after this many seconds without fetch progress while messages wait (default 60).")
    var livenessTimeout: Double = 60

    @Option(name: .customLong("max-tasks-per-child"), help: ArgumentHelp("Replace a worker process after it has run N tasks (default: no limit).", valueName: "N"))
    var maxTasksPerChild: Int?

    @Option(name: .customLong("max-memory-per-child"), help: ArgumentHelp("Replace a worker process whose resident memory exceeds KB kilobytes after a task (default: no limit).", valueName: "KB"))
    var maxMemoryPerChild: Int?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Shut down a worker process idle for longer than SECONDS (default 300; 0: never).", valueName: "SECONDS"))
    var idleTimeout: Double?

    @Option(name: .long, help: ArgumentHelp("MAX is the concurrency (unless -c is given); MIN processes are kept through the idle timeout.", valueName: "MAX,MIN"))
    var autoscale: String?

    @Option(name: [.customShort("P"), .long], help: "Pool kind: prefork (one task per worker process, the default) or threads (up to -c tasks per worker process).")
    var pool: String?

    @Option(name: .customLong("log-format"), help: "Log lines as text (default) or json (one object per line, with task_id and task_name on task lines).")
    var logFormat: String = "text"

    @Option(name: .customLong("max-message-size"), help: ArgumentHelp("worker_max_message_size: dead-letter, unread, any message larger than BYTES (default 67108864, 64 MiB).", valueName: "BYTES"))
    var maxMessageSize: Int?

    @Option(name: .customLong("grace-period"), help: "Seconds a warm shutdown waits for running tasks (default 60).")
    var gracePeriod: Double = 60

    @Option(name: [.customShort("u"), .customLong("user")], help: ArgumentHelp("Started as root: become this user (its uid and groups) before connecting or starting any worker process, so no plugin runs as root.", valueName: "NAME"))
    var user: String?

    func run() throws {
        let file = try plugins.loadConfigFile()
        if let user {
            do { try PrivilegeDrop.drop(to: user) } catch { throw ValidationError(error.description) }
        }
        let security: (settings: SecuritySettings, signResults: Bool)?
        do { security = try file.security.resolved() } catch { throw FnHostError(error.description) }
        let brokerURL = file.brokerURL(flag: broker)
        let backendURL = backend ?? ConfigFile.environment(["FNHOST_RESULT_BACKEND", "CELERY_RESULT_BACKEND"]) ?? file.resultBackend ?? brokerURL
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let scale = try autoscale.map(Self.parseAutoscale)
        let c = concurrency ?? scale?.max ?? file.concurrency ?? max(1, cpus)
        guard c >= 1, c <= 1024 else { throw ValidationError("--concurrency must be from 1 to 1024") }
        let maxTasks = maxTasksPerChild ?? file.maxTasksPerChild
        let maxMemory = maxMemoryPerChild ?? file.maxMemoryPerChild
        guard (maxTasks ?? 0) >= 0 else { throw ValidationError("--max-tasks-per-child must be 0 (no limit) or more") }
        guard (maxMemory ?? 0) >= 0 else { throw ValidationError("--max-memory-per-child must be 0 (no limit) or more kilobytes") }
        let idleTimeout = self.idleTimeout ?? 300
        guard idleTimeout >= 0, idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be 0 (never) or more seconds") }
        let poolKind = try PoolKind(parsing: pool ?? file.pool ?? "prefork")
        if let metricsPort { guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port must be from 0 to 65535") } }
        guard heartbeatInterval > 0, heartbeatInterval.isFinite else { throw ValidationError("--heartbeat-interval must be a positive number of seconds") }
        guard livenessTimeout > 0, livenessTimeout.isFinite else { throw ValidationError("--liveness-timeout must be a positive number of seconds") }
        let maxMessageSize = self.maxMessageSize ?? file.maxMessageSize ?? MessageLimits.defaultMaxMessageSize
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024 bytes") }
        let extra = queues.map { $0.split(separator: ",").map { String($0).trimmingCharacters() }.filter { !$0.isEmpty } } ?? file.queues
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let nodename = hostname ?? file.hostname ?? "fnhost@" + String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let visibilityTimeout = file.visibilityTimeout ?? 3600, leaseTimeout = file.leaseTimeout ?? 30
        let settings = HostRuntime.Settings(
            functionsDirectory: try plugins.functionsDirectory(file),
            stateDirectory: plugins.resolvedStateDirectory,
            brokerURL: brokerURL,
            backendURL: backendURL,
            concurrency: c,
            prefetchMultiplier: prefetchMultiplier ?? file.prefetchMultiplier ?? 4,
            sharedQueues: extra,
            hostname: nodename,
            resultExpires: file.resultExpires ?? 86_400,
            taskOverrides: file.tasks,
            gracePeriod: gracePeriod,
            visibilityTimeout: visibilityTimeout,
            leaseTimeout: leaseTimeout,
            recycle: RecyclePolicy(maxTasksPerChild: maxTasks, maxMemoryPerChild: maxMemory),
            idle: IdlePolicy(idleTimeout: idleTimeout, minProcesses: min(scale?.min ?? 0, c)),
            pool: poolKind,
            deduplicateSuccessfulTasks: file.deduplicateSuccessfulTasks,
            pluginLogLevel: plugins.pythonLogLevel,
            amqp: file.amqp,
            brokerTLS: file.brokerUseSSL,
            backendTLS: file.redisBackendUseSSL,
            allowUntrustedPlugins: plugins.allowUntrustedPlugins,
            taskRoutes: file.taskRoutes,
            security: security?.settings,
            signResults: security?.signResults ?? false,
            limits: MessageLimits(maxMessageSize: maxMessageSize),
            observability: .init(
                hostname: nodename, metricsPort: metricsPort, metricsHost: metricsHost, taskEvents: taskEvents || (file.sendTaskEvents ?? false),
                heartbeatInterval: heartbeatInterval, health: HealthPolicy(stallTimeout: livenessTimeout),
                poolImplementation: "fnhost:\(poolKind.rawValue)", maxTasksPerChild: maxTasks,
                configuration: Self.celeryConf(broker: brokerURL, backend: backendURL, concurrency: c, prefetch: prefetchMultiplier ?? file.prefetchMultiplier ?? 4,
                                               maxTasks: maxTasks, maxMemory: maxMemory, pool: poolKind.rawValue, queues: extra, events: taskEvents || (file.sendTaskEvents ?? false),
                                               security: security?.settings, signResults: security?.signResults ?? false,
                                               visibilityTimeout: visibilityTimeout, leaseTimeout: leaseTimeout)))
        let logger = LogSetup.bootstrap(try plugins.logLevel, format: try LogFormat(parsing: logFormat))
        for key in file.ignored { logger.warning("config: \(key) is not supported yet and is ignored") }
        if geteuid() == 0 { logger.warning("running as root: plugins run as root too; start with --user NAME to drop privileges") }
        let code = try HostRuntime(settings: settings, logger: logger).run()
        throw ExitCode(code)
    }

    /// Celery's `--autoscale MAX,MIN` (MIN defaults to 0).
    static func parseAutoscale(_ text: String) throws -> (max: Int, min: Int) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int(String($0).trimmingCharacters()) }
        guard (1...2).contains(parts.count), let high = parts[0], let low = parts.count == 2 ? parts[1] : 0,
              high >= 1, high <= 1024, low >= 0, low <= high else {
            throw ValidationError("--autoscale must be MAX,MIN with 1 <= MAX <= 1024 and 0 <= MIN <= MAX (e.g. 10,3)")
        }
        return (high, low)
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// Celery's pool kinds that fnhost has: `prefork` (one task per worker process at a time: hard
/// time limits, recycling, full isolation) and `threads` (up to the concurrency in tasks per
/// worker process, for I/O-bound plugins; a hard time limit replaces the whole process).
enum PoolKind: String {
    case prefork, threads

    init(parsing text: String) throws {
        guard let kind = PoolKind(rawValue: text.lowercased()) else {
            throw ValidationError("unknown pool '\(text)': fnhost has prefork and threads (solo, eventlet and gevent are Python-only)")
        }
        self = kind
    }
}
