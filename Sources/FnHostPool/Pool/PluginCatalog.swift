import CeleryProtocol
import FnHostCore
import FnHostPlugins
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Finds the plugins and manifests in the functions directory and learns what they register,
/// without loading any of them in the host: each is checked for trust (`PluginTrust`), copied
/// to its private path and loaded by a probe worker process, which reports its registry (or why
/// it failed) and is then kept as the first worker of that plugin's pool. Reloads take the same
/// steps (`PluginLoader`, `PluginReloader`).
///
/// Plugins are probed in file-name order for conflicts: the first file to register a name keeps
/// it and a later file registering it again is refused as a whole, with the reason.
public struct PluginCatalog: Sendable {
    /// The loaded functions and the failed plugins.
    public var registry: TaskRegistry
    /// Private path of each loaded plugin, by file name.
    public var privatePaths: [String: String]
    /// Probe processes still running, ready to serve (by plugin file name).
    public var probes: [WorkerProcess]

    /// Probes every plugin (`*.so`) and manifest (`*.fnhost.yml`) of the loader's directory.
    /// Probes of refused plugins exit.
    public static func discover(_ loader: PluginLoader, logger: Logger,
                                events: @escaping @Sendable (WorkerProcess, WorkerProcess.Event) -> Void = { _, _ in }) -> PluginCatalog {
        if loader.trust.policy == .allowUntrusted {
            logger.warning("--allow-untrusted-plugins: plugins and manifests are loaded whoever can write them; never use this outside development")
        }
        var registry = TaskRegistry()
        var paths: [String: String] = [:]
        let files = loader.list()
        if files.isEmpty { logger.warning("no plugins (*.so) or manifests (*.fnhost.yml) in \(loader.functionsDirectory)") }
        var failures: [String: PluginFailure] = [:]
        var items: [(plugin: String, path: String)] = []
        for file in files {
            switch loader.prepare(file) {
            case .success(let path):
                paths[file] = path
                items.append((file, path))
            case .failure(let failure):
                failures[file] = failure
            }
        }
        let results = loader.probe(items, events: events)
        var keep: [WorkerProcess] = []
        for file in files {
            if let failure = failures[file] {
                registry.addFailure(failure)
                continue
            }
            switch results[file] {
            case .failed(let failure)?:
                registry.addFailure(failure)
            case .loaded(let process, let functions, let refusals)?:
                for r in refusals { logger.error("\(r)") }
                if registry.add(plugin: file, functions: functions) != nil {
                    process.shutdown()
                } else {
                    keep.append(process)
                }
            case nil:
                break
            }
        }
        for failure in registry.failures { logger.error("plugin \(failure.plugin) failed to load: \(failure.reason)") }
        return PluginCatalog(registry: registry, privatePaths: paths, probes: keep)
    }

    /// Reads the registry a worker reported (`LoadedPlugin.registryJSON`).
    static func parseRegistry(_ json: [UInt8], plugin: String) -> Result<([RegisteredFunction], [String]), PluginFailure> {
        guard let doc = try? JSONParser.parse(json), case .array(let tasks)? = doc["tasks"] else {
            return .failure(PluginFailure(plugin: plugin, reason: "the worker reported an unreadable registry"))
        }
        var functions: [RegisteredFunction] = []
        for task in tasks {
            guard let name = task["name"]?.stringValue else { continue }
            let kind: RegisteredFunction.Kind = task["kind"]?.stringValue == "native" ? .native(signature: task["signature"]?.stringValue ?? "?") : .task
            var options = TaskOptions()
            if case .object(let o)? = task["options"] {
                do { try options.apply(o) } catch {
                    return .failure(PluginFailure(plugin: plugin, reason: "task \(name): \(error)"))
                }
            }
            functions.append(RegisteredFunction(name: name, kind: kind, options: options, plugin: plugin))
        }
        let refused = doc["refused"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if functions.isEmpty {
            return .failure(PluginFailure(plugin: plugin, reason: "no task could be registered" + (refused.isEmpty ? "" : ": " + refused.joined(separator: "; "))))
        }
        return .success((functions, refused))
    }
}
