import CeleryProtocol

/// One function a plugin registered: its name, how it is called, its options, its plugin file.
public struct RegisteredFunction: Sendable, Equatable {
    /// How the function is called.
    public enum Kind: Sendable, Equatable {
        /// `register_task`: JSON in, JSON out.
        case task
        /// `register_native`: a plain C function called through libffi with this signature.
        case native(signature: String)
    }

    public var name: String
    public var kind: Kind
    public var options: TaskOptions
    /// The plugin's file name in the functions directory (`libmath.so`).
    public var plugin: String

    public init(name: String, kind: Kind, options: TaskOptions, plugin: String) {
        self.name = name
        self.kind = kind
        self.options = options
        self.plugin = plugin
    }

    /// The queue this function consumes: its `queue` option, else its name.
    public var queue: String { options.queue ?? name }
}

/// A plugin that could not be loaded, and why.
public struct PluginFailure: Error, Sendable, Equatable {
    public var plugin: String
    public var reason: String
    public init(plugin: String, reason: String) {
        self.plugin = plugin
        self.reason = reason
    }
}

/// The functions the host serves, by name. Immutable once built.
public struct TaskRegistry: Sendable {
    public private(set) var functions: [String: RegisteredFunction] = [:]
    /// Plugins that failed to load (bad ELF, no init symbol, init refused, duplicate names...).
    public private(set) var failures: [PluginFailure] = []

    public init() {}

    /// Adds every function of `plugin`, or none: when one of its names is already taken by an
    /// earlier plugin, the whole plugin is refused with a failure naming the duplicate.
    /// Plugins are added in file-name order, so the first by name keeps a contested task.
    @discardableResult
    public mutating func add(plugin: String, functions new: [RegisteredFunction]) -> PluginFailure? {
        for f in new {
            if let existing = functions[f.name] {
                let failure = PluginFailure(plugin: plugin, reason: "duplicate task name '\(f.name)', already registered by \(existing.plugin)")
                failures.append(failure)
                return failure
            }
        }
        for f in new { functions[f.name] = f }
        return nil
    }

    /// Records a plugin that failed to load.
    public mutating func addFailure(_ failure: PluginFailure) { failures.append(failure) }

    /// Applies the deployment's per-task overrides (`tasks:` in fnhost.yml). Returns one error
    /// per task whose overrides are invalid; those tasks keep their plugin's options.
    public mutating func applyOverrides(_ overrides: [String: JSONObject]) -> [String] {
        var errors: [String] = []
        for (name, object) in overrides.sorted(by: { $0.key < $1.key }) {
            guard var f = functions[name] else {
                errors.append("tasks.\(name): no loaded function has this name")
                continue
            }
            do {
                try f.options.apply(object)
                functions[name] = f
            } catch {
                errors.append("tasks.\(name): \(error)")
            }
        }
        return errors
    }

    /// The function called `name`.
    public subscript(name: String) -> RegisteredFunction? { functions[name] }

    /// Functions sorted by name.
    public var sorted: [RegisteredFunction] { functions.values.sorted { $0.name < $1.name } }

    /// Every queue some function consumes, sorted.
    public var queues: [String] { Array(Set(functions.values.map(\.queue))).sorted() }
}
