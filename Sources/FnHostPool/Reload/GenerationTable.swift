import FnHostCore

/// Which generation of each plugin new tasks go to: the launch spec of its serving generation.
/// The executor reads it for every task (`spec(for:)`) and to retire outdated processes
/// (`isCurrent`); the reloader changes it.
///
/// A removed plugin keeps its last spec, so a task that was already on its way when the plugin
/// was removed still runs (in a process of that last generation), but no process of it is
/// current any more, so each exits once idle.
///
/// Threading: any thread; one lock, never held while calling out.
public final class GenerationTable: @unchecked Sendable {
    private let lock = ConditionLock()
    private var entries: [String: (spec: WorkerProcess.LaunchSpec, removed: Bool)] = [:]
    private let loader: PluginLoader

    /// Starts with `paths` (plugin file name -> private copy) serving.
    public init(loader: PluginLoader, serving paths: [String: String]) {
        self.loader = loader
        for (plugin, path) in paths { entries[plugin] = (loader.launchSpec(plugin: plugin, path: path), false) }
    }

    /// The spec a new worker process of `plugin` starts from (`nil`: never loaded).
    public func spec(for plugin: String) -> WorkerProcess.LaunchSpec? {
        lock.withLock { entries[plugin]?.spec }
    }

    /// Whether `process` runs the serving generation of a plugin still served.
    public func isCurrent(_ process: WorkerProcess) -> Bool {
        lock.withLock {
            guard let entry = entries[process.plugin] else { return false }
            return !entry.removed && entry.spec.pluginPath == process.pluginPath
        }
    }

    /// `plugin` is served from `path` from now on.
    public func serve(_ plugin: String, from path: String) {
        lock.withLock { entries[plugin] = (loader.launchSpec(plugin: plugin, path: path), false) }
    }

    /// The private copies new worker processes may start from (removed plugins' included).
    public var paths: Set<String> {
        lock.withLock { Set(entries.values.map(\.spec.pluginPath)) }
    }

    /// `plugin` is no longer served.
    public func remove(_ plugin: String) {
        lock.withLock { entries[plugin]?.removed = true }
    }
}
