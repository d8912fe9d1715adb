import ArgumentParser
import FnHostCore

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

    @Option(name: .long, help: "Broker URL (redis://host:port/db).")
    var broker: String?

    @Option(name: .long, help: "Result backend URL (redis://host:port/db).")
    var backend: String?

    @Option(name: [.customShort("Q"), .long], help: "Extra queues every function consumes, comma-separated (e.g. celery).")
    var queues: String?

    @Option(name: [.customShort("c"), .long], help: "The most tasks running at once (default: the number of CPUs).")
    var concurrency: Int?

    @Option(name: [.customShort("n"), .long], help: "Node name (default: fnhost@<hostname>).")
    var hostname: String?

    @Option(name: .customLong("prefetch-multiplier"), help: "worker_prefetch_multiplier (default 4).")
    var prefetchMultiplier: Int?

    @Option(name: .customLong("metrics-port"), help: "Port for /metrics (accepted; served once metrics land).")
    var metricsPort: Int?

    @Option(name: .customLong("grace-period"), help: "Seconds a warm shutdown waits for running tasks (default 60).")
    var gracePeriod: Double = 60

    func run() throws {
        let file = try plugins.loadConfigFile()
        let brokerURL = file.brokerURL(flag: broker)
        let backendURL = backend ?? ConfigFile.environment(["FNHOST_RESULT_BACKEND", "CELERY_RESULT_BACKEND"]) ?? file.resultBackend ?? brokerURL
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let c = concurrency ?? file.concurrency ?? max(1, cpus)
        guard c >= 1, c <= 1024 else { throw ValidationError("--concurrency must be from 1 to 1024") }
        let extra = queues.map { $0.split(separator: ",").map { String($0).trimmingCharacters() }.filter { !$0.isEmpty } } ?? file.queues
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let settings = HostRuntime.Settings(
            functionsDirectory: try plugins.functionsDirectory(file),
            stateDirectory: plugins.resolvedStateDirectory,
            brokerURL: brokerURL,
            backendURL: backendURL,
            concurrency: c,
            prefetchMultiplier: prefetchMultiplier ?? file.prefetchMultiplier ?? 4,
            sharedQueues: extra,
            hostname: hostname ?? file.hostname ?? "fnhost@" + String(cString: host),
            resultExpires: file.resultExpires ?? 86_400,
            taskOverrides: file.tasks,
            gracePeriod: gracePeriod,
            visibilityTimeout: file.visibilityTimeout ?? 3600,
            pluginLogLevel: plugins.pythonLogLevel)
        let logger = LogSetup.bootstrap(try plugins.logLevel)
        for key in file.ignored { logger.warning("config: \(key) is not supported yet and is ignored") }
        if let metricsPort { logger.warning("--metrics-port \(metricsPort): the metrics endpoint is not part of this version yet; nothing listens there") }
        let code = try HostRuntime(settings: settings, logger: logger).run()
        throw ExitCode(code)
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
