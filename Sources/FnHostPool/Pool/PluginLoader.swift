import CeleryProtocol
import FnHostCore
import FnHostPlugins
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The steps of loading a functions directory, shared by the first load (`PluginCatalog`) and
/// every reload (`PluginReloader`): list the plugins and manifests, check that they can be
/// trusted, make their private copies, and probe them in worker processes. The host process
/// itself never loads a plugin.
///
/// Threading: a value; `probe` blocks the calling thread until every probe has answered (or
/// `probeTimeout` passed).
public struct PluginLoader: Sendable {
    public var functionsDirectory: String
    public var stateDirectory: String
    public var executable: String
    public var logLevel: Int32
    /// Tasks one worker process runs at once (1: prefork).
    public var threads: Int
    public var trust: PluginTrust
    /// Seconds a probe may take to load its plugin.
    public var probeTimeout: Double
    /// Where `prepare` writes the private copies, each claimed while in use.
    public let copies: PrivateCopyStore

    public init(functionsDirectory: String, stateDirectory: String, executable: String, logLevel: Int32, threads: Int = 1,
                trust: PluginTrust = PluginTrust(policy: .enforce), probeTimeout: Double = 20) {
        self.functionsDirectory = functionsDirectory
        self.stateDirectory = stateDirectory
        self.executable = executable
        self.logLevel = logLevel
        self.threads = threads
        self.trust = trust
        self.probeTimeout = probeTimeout
        self.copies = PrivateCopyStore(directory: stateDirectory + "/plugins")
    }

    /// What a probe found.
    public enum ProbeResult: Sendable {
        /// Loaded: the running probe process (ready to serve), the functions, refused registrations.
        case loaded(WorkerProcess, [RegisteredFunction], refusals: [String])
        case failed(PluginFailure)
    }

    /// The spec of a worker process for a plugin file whose private copy is `path`.
    public func launchSpec(plugin: String, path: String) -> WorkerProcess.LaunchSpec {
        WorkerProcess.LaunchSpec(executable: executable, pluginPath: path, pluginName: plugin, logLevel: logLevel, threads: threads)
    }

    /// Plugins (`*.so`) and manifests (`*.fnhost.yml`) of the directory, sorted by name;
    /// hidden files and anything else (such as `*.so.tmp` being written) are ignored.
    public func list() -> [String] {
        directoryNames(functionsDirectory).filter { name in
            var st = stat()
            return Self.isPluginFile(name) && stat(functionsDirectory + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }.sorted()
    }

    /// Whether a file name is a plugin or a manifest fnhost loads.
    public static func isPluginFile(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".so") || (name.hasSuffix(PluginManifest.suffix) && name.count > PluginManifest.suffix.count))
    }

    /// Checks `file` can be trusted and makes its private copy: the path a worker loads. For a
    /// manifest, validates it, copies a library it names by path, and writes its resolved form.
    public func prepare(_ file: String) -> Result<String, PluginFailure> {
        let path = functionsDirectory + "/" + file
        if let problem = trust.check(file: path) { return .failure(PluginFailure(plugin: file, reason: problem)) }
        do {
            guard file.hasSuffix(PluginManifest.suffix) else { return .success(try copies.make(of: path)) }
            let bytes = try PrivateCopy.read(path)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return .failure(PluginFailure(plugin: file, reason: "\(file): not UTF-8 text"))
            }
            let manifest: PluginManifest
            switch Result(catching: { () throws(PluginManifest.Error) in try PluginManifest.parse(text, file: file) }) {
            case .success(let m): manifest = m
            case .failure(let error): return .failure(PluginFailure(plugin: file, reason: error.description))
            }
            var library = manifest.library
            var libraryCopy: String?
            if manifest.libraryIsPath {
                let libraryPath = library.hasPrefix("/") ? library : functionsDirectory + "/" + library
                guard access(libraryPath, R_OK) == 0 else {
                    return .failure(PluginFailure(plugin: file, reason: "\(file):\(manifest.libraryLine): library \(manifest.library): \(String(cString: strerror(errno)))"))
                }
                if let problem = trust.check(file: libraryPath) {
                    return .failure(PluginFailure(plugin: file, reason: "\(file):\(manifest.libraryLine): library \(manifest.library): \(problem)"))
                }
                library = try copies.make(of: libraryPath)
                libraryCopy = library
            }
            let resolved = ResolvedManifest.encode(manifest, file: file, library: library)
            let name = String(file.dropLast(PluginManifest.suffix.count)) + ResolvedManifest.suffix
            return .success(try copies.store(resolved, name: name, library: libraryCopy))
        } catch {
            return .failure(PluginFailure(plugin: file, reason: error.description))
        }
    }

    /// Loads each `(plugin, private path)` in a probe worker process, all at once, and waits
    /// for every answer. A process whose plugin failed is killed; `events` receives every event
    /// of the processes that loaded (to hand them to an executor).
    public func probe(_ items: [(plugin: String, path: String)],
                      events: @escaping @Sendable (WorkerProcess, WorkerProcess.Event) -> Void) -> [String: ProbeResult] {
        final class Probe: @unchecked Sendable {
            let name: String
            var process: WorkerProcess?
            var result: Result<[UInt8], PluginFailure>?
            init(name: String) { self.name = name }
        }
        let lock = ConditionLock()
        var probes: [Probe] = []
        for (file, path) in items {
            let probe = Probe(name: file)
            probes.append(probe)
            do {
                let process = try WorkerProcess.spawn(launchSpec(plugin: file, path: path)) { process, event in
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
                lock.withLock { probe.process = process }
            } catch {
                lock.withLock { probe.result = .failure(PluginFailure(plugin: file, reason: error.description)) }
            }
        }
        let deadline = monotonicNow() + probeTimeout
        lock.withLock {
            while probes.contains(where: { $0.result == nil }) {
                if !lock.wait(until: deadline) { break }
            }
        }
        var results: [String: ProbeResult] = [:]
        for probe in probes {
            let (result, process) = lock.withLock { (probe.result, probe.process) }
            switch result ?? .failure(PluginFailure(plugin: probe.name, reason: "loading took longer than \(Int(probeTimeout))s")) {
            case .failure(let failure):
                process?.kill()
                results[probe.name] = .failed(failure)
            case .success(let json):
                switch PluginCatalog.parseRegistry(json, plugin: probe.name) {
                case .failure(let failure):
                    process?.shutdown()
                    results[probe.name] = .failed(failure)
                case .success(let (functions, refusals)):
                    if let process { results[probe.name] = .loaded(process, functions, refusals: refusals) }
                }
            }
        }
        return results
    }
}
