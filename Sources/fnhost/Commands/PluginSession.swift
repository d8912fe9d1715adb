import ArgumentParser
import FnHostCore
import FnHostPool
import Logging

/// Loads the functions directory the way `serve` does (probe processes, config overrides), for
/// the commands that inspect or call plugins without a broker.
struct PluginSession {
    let catalog: PluginCatalog
    let registry: TaskRegistry
    let logger: Logger

    init(_ options: PluginOptions, events: @escaping @Sendable (WorkerProcess, WorkerProcess.Event) -> Void = { _, _ in }) throws {
        let file = try options.loadConfigFile()
        logger = LogSetup.bootstrap(try options.logLevel)
        catalog = PluginCatalog.discover(try options.loader(file), logger: logger, events: events)
        var registry = catalog.registry
        for error in registry.applyOverrides(file.tasks) { logger.error("config: \(error)") }
        self.registry = registry
    }

    /// Stops the probe processes (they call `fnhost_plugin_fini`) and waits for them to exit,
    /// killing any that take longer than 5 s.
    func close() {
        for p in catalog.probes { p.shutdown() }
        for p in catalog.probes where !p.waitForExit(timeout: 5) {
            logger.warning("worker process \(p.pid) (\(p.plugin)) did not exit in time: killing it")
            p.kill()
            p.waitForExit(timeout: 2)
        }
    }
}
