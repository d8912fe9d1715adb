import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Hot reload of the functions directory: on a change (the watcher, debounced), SIGHUP or
/// `fnhost reload`, every plugin and manifest is checked and copied again; each new version is
/// loaded first in a probe worker process, and only a version whose init succeeded and whose
/// registry fits becomes the new generation: its probe is adopted as its first worker process,
/// new tasks go to it, and the old generation's processes finish what they hold and exit. A
/// version that fails keeps the old generation serving, and the reason is logged and kept in
/// `status`. A removed plugin stops being served: its queues are no longer consumed, its
/// deliveries not yet started go back to their queues, its running tasks finish.
///
/// Nothing is lost or run twice because of a reload: no delivery is requeued except those of a
/// function that is no longer served, and no running task is interrupted (the dispatcher's
/// `replaceRegistry`, the executor's `retireOutdated`).
///
/// Threading: one thread of its own runs the reloads (`ReloadStateMachine` decides when);
/// `changeObserved` and `reloadRequested` may be called from any thread.
public final class PluginReloader: @unchecked Sendable {
    private let loader: PluginLoader
    private let table: GenerationTable
    private let executor: ProcessExecutor
    private let logger: Logger
    private let install: @Sendable (TaskRegistry) -> Void
    private let report: @Sendable ([ReloadStateMachine.PluginStatus]) -> Void
    private let failed: @Sendable (String) -> Void
    private let lock = ConditionLock()
    private var machine: ReloadStateMachine
    /// Functions of each serving generation, as its plugin registered them (before overrides).
    private var functions: [String: [RegisteredFunction]]
    private var stopped = false
    private var thread: JoinableThread?

    /// Starts from the first load (`catalog`: generation 1 of each loaded plugin). `install` is
    /// called with each new registry (the host applies its overrides and hands it to the
    /// dispatcher). `report` gets every plugin's status at start and after each reload.
    public init(loader: PluginLoader, catalog: PluginCatalog, table: GenerationTable, executor: ProcessExecutor,
                machine: ReloadStateMachine = ReloadStateMachine(), logger: Logger,
                report: @escaping @Sendable ([ReloadStateMachine.PluginStatus]) -> Void = { _ in },
                failed: @escaping @Sendable (String) -> Void = { _ in },
                install: @escaping @Sendable (TaskRegistry) -> Void) {
        self.report = report
        self.failed = failed
        self.loader = loader
        self.table = table
        self.executor = executor
        self.logger = logger
        self.install = install
        self.machine = machine
        var byPlugin: [String: [RegisteredFunction]] = [:]
        for f in catalog.registry.sorted { byPlugin[f.plugin, default: []].append(f) }
        self.functions = byPlugin
        var serving: [String: String] = [:]
        for plugin in byPlugin.keys { serving[plugin] = catalog.privatePaths[plugin] }
        var failed: [String: String] = [:]
        for failure in catalog.registry.failures where byPlugin[failure.plugin] == nil { failed[failure.plugin] = failure.reason }
        self.machine.started(serving: serving, failed: failed)
    }

    public func start() {
        report(status)
        thread = startThread(name: "fnhost-reload") { [self] in run() }
    }

    /// Stops reloading; returns once a reload in progress has finished.
    public func stop() {
        lock.withLock {
            stopped = true
            lock.broadcast()
        }
        thread?.join()
    }

    /// The watcher saw `file` change.
    public func changeObserved(_ file: String) {
        lock.withLock {
            machine.changeObserved(now: monotonicNow())
            lock.broadcast()
        }
    }

    /// SIGHUP or `fnhost reload`.
    public func reloadRequested() {
        lock.withLock {
            machine.reloadRequested(now: monotonicNow())
            lock.broadcast()
        }
    }

    /// Every known plugin: its serving generation and why its latest version is not served.
    public var status: [ReloadStateMachine.PluginStatus] { lock.withLock { machine.status } }

    private func run() {
        collectCopies()  // what earlier hosts, and `fnhost list` or `call`, left behind
        while true {
            let start: Bool = lock.withLock {
                while !stopped {
                    let now = monotonicNow()
                    if machine.reloadStarted(now: now) { return true }
                    let wake = min(machine.nextReload ?? now + 1, now + 1)
                    if !lock.wait(until: wake) { return false }
                }
                return false
            }
            if lock.withLock({ stopped }) { return }
            if start {
                reload()
                lock.withLock { machine.reloadFinished(now: monotonicNow()) }
                report(status)
            }
            if checkDraining() || start { collectCopies() }
        }
    }

    /// Releases the private copies no worker process may start from any more (not a serving
    /// generation's, nor a live process's), and removes every copy no process claims, this
    /// host's or another's of the same state directory.
    private func collectCopies() {
        loader.copies.keepClaims(only: table.paths.union(executor.pluginPaths))
        let removed = loader.copies.collect()
        if !removed.isEmpty {
            logger.info("removed \(removed.count) private plugin copies no worker process uses from \(loader.copies.directory)")
        }
    }

    /// Whether a draining generation has drained.
    private func checkDraining() -> Bool {
        var drained = false
        let draining = lock.withLock { machine.drainingGenerations }
        for g in draining {
            let count = executor.processCount(plugin: g.plugin, path: g.path)
            let actions = lock.withLock { machine.drainChecked(g, processes: count, now: monotonicNow()) }
            for action in actions {
                switch action {
                case .drained(let g):
                    logger.info("reload: \(g) has drained: its worker processes have exited")
                    drained = true
                case .overdue(let g, let seconds): logger.warning("reload: \(g) is still draining after \(Int(seconds))s (\(count) worker process(es) still running tasks)")
                default: break
                }
            }
        }
        return drained
    }

    /// One reload: scan, probe what changed, assemble the registry, switch generations.
    private func reload() {
        let began = monotonicNow()
        let files = loader.list()
        var found: [String: ReloadStateMachine.Found] = [:]
        for file in files {
            switch loader.prepare(file) {
            case .success(let path): found[file] = .version(path: path)
            case .failure(let failure): found[file] = .refused(reason: failure.reason)
            }
        }
        let scanActions = lock.withLock { machine.scanned(found, now: monotonicNow()) }
        var probing: [ReloadStateMachine.Generation] = []
        var removed: [ReloadStateMachine.Generation] = []
        for action in scanActions {
            switch action {
            case .probe(let g): probing.append(g)
            case .retire(let g): removed.append(g)
            case .keep(let plugin, let serving, let reason): report(plugin: plugin, serving: serving, reason: reason)
            default: break
            }
        }
        if probing.isEmpty && removed.isEmpty {
            logger.debug("reload: nothing changed")
            return
        }
        logger.info("reload: probing \(probing.map(\.description).joined(separator: ", "))\(removed.isEmpty ? "" : "; removed: " + removed.map(\.plugin).joined(separator: ", "))")
        let results = loader.probe(probing.map { ($0.plugin, $0.path) }, events: executor.events)

        // Assemble the registry: the generations that go on serving first (a new version never
        // takes a name from a plugin that serves it), then the new versions in file-name order
        // (the first to register a name keeps it); a refused new version keeps its old one.
        var candidates = functions
        for g in removed { candidates[g.plugin] = nil }
        var loaded: [String: (ReloadStateMachine.Generation, WorkerProcess, [RegisteredFunction])] = [:]
        for g in probing {
            switch results[g.plugin] {
            case .loaded(let process, let fs, let refusals)?:
                for r in refusals { logger.error("\(r)") }
                loaded[g.plugin] = (g, process, fs)
            case .failed(let failure)?:
                let actions = lock.withLock { machine.probeFailed(g, reason: failure.reason, now: monotonicNow()) }
                reportAll(actions)
            case nil:
                let actions = lock.withLock { machine.probeFailed(g, reason: "the probe did not answer", now: monotonicNow()) }
                reportAll(actions)
            }
        }
        var registry = TaskRegistry()
        var activated: [(ReloadStateMachine.Generation, WorkerProcess, [RegisteredFunction])] = []
        var refusedProbes: [WorkerProcess] = []
        for plugin in candidates.keys.sorted() where loaded[plugin] == nil {
            registry.add(plugin: plugin, functions: candidates[plugin]!)
        }
        for plugin in loaded.keys.sorted() {
            let (g, process, fs) = loaded[plugin]!
            if let refusal = registry.add(plugin: plugin, functions: fs) {
                refusedProbes.append(process)
                let actions = lock.withLock { machine.probeFailed(g, reason: refusal.reason, retryUnchanged: true, now: monotonicNow()) }
                reportAll(actions)
                if let old = candidates[plugin] { registry.add(plugin: plugin, functions: old) }
            } else {
                activated.append((g, process, fs))
            }
        }
        for status in lock.withLock({ machine.status }) {
            guard let reason = status.failure, !registry.failures.contains(where: { $0.plugin == status.plugin }) else { continue }
            registry.addFailure(PluginFailure(plugin: status.plugin, reason: status.serving.map { "\(reason) (\($0) keeps serving)" } ?? reason))
        }

        // Switch: adopt the new generations' probes, route new tasks to them, retire the old.
        for process in refusedProbes { process.shutdown() }
        for (g, process, fs) in activated {
            let actions = lock.withLock { machine.probeSucceeded(g, now: monotonicNow()) }
            executor.adopt(process)
            table.serve(g.plugin, from: g.path)
            candidates[g.plugin] = fs
            for case .activate(let g, let old) in actions {
                let drains = old.map { "; \($0) drains" } ?? ""
                logger.info("reload: \(g) serves \(fs.map(\.name).joined(separator: ", "))\(drains)")
            }
        }
        for g in removed {
            table.remove(g.plugin)
            logger.info("reload: \(g.plugin) was removed: its queues are no longer consumed; \(g) drains")
        }
        functions = candidates
        executor.retireOutdated()
        install(registry)
        logger.info("reload: took \(Int((monotonicNow() - began) * 1000)) ms from the scan to serving")
    }

    private func reportAll(_ actions: [ReloadStateMachine.Action]) {
        for case .keep(let plugin, let serving, let reason) in actions { report(plugin: plugin, serving: serving, reason: reason) }
    }

    private func report(plugin: String, serving: ReloadStateMachine.Generation?, reason: String) {
        failed(plugin)
        if let serving {
            logger.error("reload: plugin \(plugin) failed to load: \(reason); \(serving) keeps serving")
        } else {
            logger.error("plugin \(plugin) failed to load: \(reason)")
        }
    }
}
