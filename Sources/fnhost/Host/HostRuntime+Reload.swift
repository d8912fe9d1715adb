import CeleryProtocol
import FnHostAMQP
import FnHostCore
import FnHostPool
import FnHostRedis
import Logging

/// Hot reload in the host: the reloader, the directory watcher, SIGHUP, and the pid file that
/// `fnhost reload` reads.
extension HostRuntime {
    struct Reloading {
        let reloader: PluginReloader
        let watcher: DirectoryWatcher?
        let pidFile: PidFile

        func stop() {
            watcher?.stop()
            reloader.stop()
            pidFile.remove()
        }
    }

    /// Starts watching the functions directory and answering SIGHUP. Each new registry gets the
    /// deployment's overrides, goes to the dispatcher, and its queues are declared.
    func startReloading(loader: PluginLoader, catalog: PluginCatalog, table: GenerationTable, executor: ProcessExecutor,
                        dispatcher: Dispatcher, broker: any Broker, overrides: [String: JSONObject],
                        reloadFailed: @escaping @Sendable (String) -> Void = { _ in }) -> Reloading {
        let logger = self.logger
        let pidFile = PidFile(stateDirectory: loader.stateDirectory, functionsDirectory: loader.functionsDirectory)
        do { try pidFile.write() } catch { logger.error("`fnhost reload` will not find this host: \(error)") }
        let report: @Sendable ([ReloadStateMachine.PluginStatus]) -> Void = { status in
            pidFile.writeStatus(status.map { plugin in
                let serving = plugin.serving.map { "generation \($0.number) serving" } ?? "not serving"
                return "\(plugin.plugin): \(serving)" + (plugin.failure.map { "; its latest version failed: \($0)" } ?? "")
            })
        }
        let reloader = PluginReloader(loader: loader, catalog: catalog, table: table, executor: executor, logger: logger,
                                      report: report, failed: reloadFailed) { raw in
            var registry = raw
            for error in registry.applyOverrides(overrides) { logger.error("config: \(error)") }
            let queues = dispatcher.replaceRegistry(registry)
            if let amqp = broker as? AMQPBroker {
                let limits = dispatcher.prefetchLimits
                amqp.setPrefetch(perQueue: limits.perQueue, total: limits.total)
            }
            do { try broker.declare(queues: queues) } catch { logger.error("declaring the queues after a reload failed: \(error)") }
            let names = registry.sorted.map(\.name)
            logger.info("reload done: \(names.count) functions [\(names.joined(separator: ", "))], queues [\(queues.joined(separator: ", "))]")
        }
        reloader.start()
        var watcher: DirectoryWatcher?
        do {
            watcher = try DirectoryWatcher(directory: loader.functionsDirectory) { file in reloader.changeObserved(file) }
        } catch {
            logger.error("plugins are not reloaded on change (SIGHUP and `fnhost reload` still work): \(error)")
        }
        setHangupHandler { reloader.reloadRequested() }
        return Reloading(reloader: reloader, watcher: watcher, pidFile: pidFile)
    }
}
