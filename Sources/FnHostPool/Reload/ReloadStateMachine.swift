/// Hot reload as a state machine: when a reload is due (changes debounced, or asked for), and
/// the lifecycle of each plugin's generations: `probing` -> `serving` -> `draining` -> gone, or
/// `probing` -> failed (the serving generation, if any, stays). Events are past-tense `mutating`
/// functions returning the `Action`s for the caller (`PluginReloader`) to perform. No I/O and no
/// clock of its own: the caller passes `now`, so tests drive it with a manual clock.
///
/// Guarantees it encodes:
/// - a change is acted on once the directory has been quiet for `quietPeriod` seconds (a build
///   that writes a file in several steps loads once), and at the latest `maxDelay` seconds
///   after the first change; `reloadRequested` (SIGHUP, `fnhost reload`) is due at once;
///   changes seen during a reload cause one more reload after it;
/// - a version is probed only if it differs from the serving one and from the last version
///   that failed; only a successful probe replaces the serving generation, which then drains;
/// - a failed or refused version never stops the serving generation;
/// - a removed plugin's serving generation drains and the plugin is no longer served.
public struct ReloadStateMachine: Sendable {
    /// One version of one plugin, loaded by worker processes from `path` (its private copy).
    public struct Generation: Sendable, Equatable, CustomStringConvertible {
        public let plugin: String
        public let number: Int
        public let path: String

        public init(plugin: String, number: Int, path: String) {
            self.plugin = plugin
            self.number = number
            self.path = path
        }

        public var description: String { "\(plugin) generation \(number)" }
    }

    /// What a scan of the functions directory found for one file.
    public enum Found: Sendable, Equatable {
        /// A version ready to probe: its private copy.
        case version(path: String)
        /// The file cannot be used (untrusted, bad manifest, unreadable), with why.
        case refused(reason: String)
    }

    /// What the caller does.
    public enum Action: Sendable, Equatable {
        /// Load this generation in a probe worker process.
        case probe(Generation)
        /// Serve this generation from now on; `replacing` (if any) drains.
        case activate(Generation, replacing: Generation?)
        /// A version of `plugin` could not be used; `serving` (if any) goes on serving.
        case keep(plugin: String, serving: Generation?, reason: String)
        /// The plugin was removed: stop serving this generation; it drains.
        case retire(Generation)
        /// Every worker process of this draining generation has exited.
        case drained(Generation)
        /// This generation has been draining for `seconds` (a long task still runs in it).
        case overdue(Generation, seconds: Double)
    }

    /// What `status` reports of one plugin.
    public struct PluginStatus: Sendable, Equatable {
        public var plugin: String
        public var serving: Generation?
        /// Why its latest version is not served (nil: it is).
        public var failure: String?

        public init(plugin: String, serving: Generation?, failure: String?) {
            self.plugin = plugin
            self.serving = serving
            self.failure = failure
        }
    }

    private struct PluginState: Sendable {
        var serving: Generation?
        var probing: Generation?
        /// The latest version that failed its probe: not probed again until the file changes.
        var failedPath: String?
        var failure: String?
    }

    private struct Draining: Sendable {
        var generation: Generation
        var since: Double
        var warned = false
    }

    /// Seconds without a change before a reload starts.
    public let quietPeriod: Double
    /// The longest a reload waits after the first change, however busy the directory is.
    public let maxDelay: Double
    /// Seconds of draining after which `overdue` is reported (once).
    public let drainWarning: Double

    private var firstChange: Double?
    private var lastChange: Double?
    private var requested = false
    private var reloading = false
    private var plugins: [String: PluginState] = [:]
    private var draining: [Draining] = []
    private var lastNumber: [String: Int] = [:]

    public init(quietPeriod: Double = 0.25, maxDelay: Double = 2, drainWarning: Double = 300) {
        self.quietPeriod = quietPeriod
        self.maxDelay = maxDelay
        self.drainWarning = drainWarning
    }

    // MARK: When to reload

    /// The watcher saw a plugin or manifest change.
    public mutating func changeObserved(now: Double) {
        if firstChange == nil { firstChange = now }
        lastChange = now
    }

    /// SIGHUP or `fnhost reload`: reload as soon as possible.
    public mutating func reloadRequested(now: Double) {
        requested = true
    }

    /// When the next reload is due (`nil`: none is pending, or one is running).
    public var nextReload: Double? {
        guard !reloading else { return nil }
        if requested { return -Double.infinity }
        guard let first = firstChange, let last = lastChange else { return nil }
        return min(last + quietPeriod, first + maxDelay)
    }

    /// Starts a reload if one is due at `now`; true when the caller must run it now (and call
    /// `reloadFinished` after). Changes seen from now on lead to another reload.
    public mutating func reloadStarted(now: Double) -> Bool {
        guard let due = nextReload, due <= now else { return false }
        reloading = true
        requested = false
        firstChange = nil
        lastChange = nil
        return true
    }

    /// The reload started by `reloadStarted` is over.
    public mutating func reloadFinished(now: Double) {
        reloading = false
    }

    // MARK: Generations

    /// Plugins loaded at start: each serves as generation 1; `failed` could not be loaded (by
    /// file name, why). A failed one is probed again at the first reload.
    public mutating func started(serving: [String: String], failed: [String: String] = [:]) {
        for (plugin, reason) in failed {
            plugins[plugin] = PluginState(failure: reason)
            lastNumber[plugin] = 1
        }
        for (plugin, path) in serving {
            let g = Generation(plugin: plugin, number: 1, path: path)
            plugins[plugin] = PluginState(serving: g)
            lastNumber[plugin] = 1
        }
    }

    /// A scan of the functions directory found `found` (file name -> what it is). Files not in
    /// it were removed.
    public mutating func scanned(_ found: [String: Found], now: Double) -> [Action] {
        var actions: [Action] = []
        for plugin in Set(found.keys).union(plugins.keys).sorted() {
            var state = plugins[plugin] ?? PluginState()
            switch found[plugin] {
            case .version(let path)?:
                if state.serving?.path == path {
                    state.failure = nil
                    state.failedPath = nil
                } else if state.failedPath == path || state.probing?.path == path {
                    break
                } else {
                    let number = (lastNumber[plugin] ?? 0) + 1
                    lastNumber[plugin] = number
                    let g = Generation(plugin: plugin, number: number, path: path)
                    state.probing = g
                    actions.append(.probe(g))
                }
                plugins[plugin] = state
            case .refused(let reason)?:
                if state.failure != reason { actions.append(.keep(plugin: plugin, serving: state.serving, reason: reason)) }
                state.failure = reason
                state.failedPath = nil
                plugins[plugin] = state
            case nil:
                if let serving = state.serving {
                    draining.append(Draining(generation: serving, since: now))
                    actions.append(.retire(serving))
                }
                plugins[plugin] = nil
            }
        }
        return actions
    }

    /// The probe of `generation` loaded it and its registry fits: it serves from now on.
    public mutating func probeSucceeded(_ generation: Generation, now: Double) -> [Action] {
        guard var state = plugins[generation.plugin], state.probing == generation else { return [] }
        let old = state.serving
        state.serving = generation
        state.probing = nil
        state.failure = nil
        state.failedPath = nil
        plugins[generation.plugin] = state
        if let old { draining.append(Draining(generation: old, since: now)) }
        return [.activate(generation, replacing: old)]
    }

    /// The probe of `generation` failed (its init, its registry, a crash, a timeout). The
    /// serving generation stays; the same version is not probed again unless `retryUnchanged`
    /// (a refusal that depends on other plugins, such as a duplicate task name).
    public mutating func probeFailed(_ generation: Generation, reason: String, retryUnchanged: Bool = false, now: Double) -> [Action] {
        guard var state = plugins[generation.plugin], state.probing == generation else { return [] }
        state.probing = nil
        state.failedPath = retryUnchanged ? nil : generation.path
        state.failure = reason
        plugins[generation.plugin] = state
        return [.keep(plugin: generation.plugin, serving: state.serving, reason: reason)]
    }

    /// The caller counted `processes` worker processes still alive for a draining generation.
    public mutating func drainChecked(_ generation: Generation, processes: Int, now: Double) -> [Action] {
        guard let i = draining.firstIndex(where: { $0.generation == generation }) else { return [] }
        if processes == 0 {
            draining.remove(at: i)
            return [.drained(generation)]
        }
        if !draining[i].warned && now - draining[i].since >= drainWarning {
            draining[i].warned = true
            return [.overdue(generation, seconds: now - draining[i].since)]
        }
        return []
    }

    /// Generations draining now.
    public var drainingGenerations: [Generation] { draining.map(\.generation) }

    /// The serving generation of `plugin`.
    public func serving(_ plugin: String) -> Generation? { plugins[plugin]?.serving }

    /// Every known plugin, sorted by name.
    public var status: [PluginStatus] {
        plugins.keys.sorted().map { PluginStatus(plugin: $0, serving: plugins[$0]!.serving, failure: plugins[$0]!.failure) }
    }
}
