import CeleryProtocol
import FnHostCore
import FnHostPlugins
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Finds the plugins in the functions directory and learns what they register, without loading
/// any of them in the host: each is copied to its private path and loaded by a probe worker
/// process, which reports its registry (or why it failed) and is then kept as the first worker
/// of that plugin's pool.
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

    /// Probes every `*.so` file of `functionsDirectory`. Probes of refused plugins exit.
    public static func discover(functionsDirectory: String, stateDirectory: String, executable: String, logLevel: Int32,
                                threads: Int = 1, logger: Logger, probeTimeout: Double = 20,
                                events: @escaping @Sendable (WorkerProcess, WorkerProcess.Event) -> Void = { _, _ in }) -> PluginCatalog {
        var registry = TaskRegistry()
        var paths: [String: String] = [:]
        let files = listPlugins(functionsDirectory)
        if files.isEmpty { logger.warning("no plugins (*.so) in \(functionsDirectory)") }

        final class Probe: @unchecked Sendable {
            let name: String
            var process: WorkerProcess?
            var result: Result<[UInt8], PluginFailure>?
            init(name: String) { self.name = name }
        }
        let lock = ConditionLock()
        var probes: [Probe] = []
        for file in files {
            let probe = Probe(name: file)
            probes.append(probe)
            let copy: String
            do {
                copy = try PrivateCopy.make(of: functionsDirectory + "/" + file, in: stateDirectory + "/plugins")
            } catch {
                probe.result = .failure(PluginFailure(plugin: file, reason: error.description))
                continue
            }
            paths[file] = copy
            let spec = WorkerProcess.LaunchSpec(executable: executable, pluginPath: copy, pluginName: file, logLevel: logLevel, threads: threads)
            do {
                probe.process = try WorkerProcess.spawn(spec) { process, event in
                    lock.withLock {
                        switch event {
                        case .ready(let json): if probe.result == nil { probe.result = .success(json) }
                        case .loadFailed(let reason): if probe.result == nil { probe.result = .failure(PluginFailure(plugin: file, reason: reason)) }
                        case .exited(let how, _):
                            if probe.result == nil {
                                probe.result = .failure(PluginFailure(plugin: file, reason: "the probe process died while loading it: \(how)"))
                            }
                        case .outcome: break
                        }
                        lock.broadcast()
                    }
                    events(process, event)
                }
            } catch {
                probe.result = .failure(PluginFailure(plugin: file, reason: error.description))
            }
        }
        let deadline = monotonicNow() + probeTimeout
        lock.withLock {
            while probes.contains(where: { $0.result == nil }) {
                if !lock.wait(until: deadline) { break }
            }
        }
        var keep: [WorkerProcess] = []
        for probe in probes {
            let result = lock.withLock { probe.result } ?? .failure(PluginFailure(plugin: probe.name, reason: "loading took longer than \(Int(probeTimeout))s"))
            switch result {
            case .failure(let failure):
                registry.addFailure(failure)
                probe.process?.kill()
            case .success(let json):
                switch parseRegistry(json, plugin: probe.name) {
                case .failure(let failure):
                    registry.addFailure(failure)
                    probe.process?.shutdown()
                case .success(let (functions, refusals)):
                    for r in refusals { logger.error("\(r)") }
                    if let failure = registry.add(plugin: probe.name, functions: functions) {
                        _ = failure
                        probe.process?.shutdown()
                    } else if let p = probe.process {
                        keep.append(p)
                    }
                }
            }
        }
        for failure in registry.failures { logger.error("plugin \(failure.plugin) failed to load: \(failure.reason)") }
        return PluginCatalog(registry: registry, privatePaths: paths, probes: keep)
    }

    /// `*.so` files of `directory`, sorted by name.
    static func listPlugins(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasSuffix(".so"), !name.hasPrefix(".") else { continue }
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            names.append(name)
        }
        return names.sorted()
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
