import CFnHostABI
import CeleryProtocol
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// A plugin loaded into this (worker) process: `dlopen`ed from its private copy, initialized,
/// with the tasks it registered. Never unloaded (`dlclose` of a Swift image is unsafe).
///
/// Only worker processes load plugins; the host process never does.
public final class LoadedPlugin {
    /// How a registered task is called.
    enum Callable {
        case task(fn: fnhost_task_fn, userdata: UnsafeMutableRawPointer?)
        case native(NativeFunction)
    }

    struct Entry {
        let name: String
        let callable: Callable
        let options: TaskOptions
        let optionsJSON: String?
    }

    /// Why a plugin could not be loaded.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The plugin's file name in the functions directory (`libmath.so`).
    public let name: String
    private let tasks: [String: Entry]
    private let order: [String]
    /// Registrations the host refused (duplicate names, bad options, bad signatures).
    public let refusals: [String]
    private let fini: (@convention(c) () -> Void)?

    /// Loads the library at `path` (a private copy) and runs its `fnhost_plugin_init`.
    /// A resolved manifest (`ResolvedManifest.suffix`) loads its library and looks up its symbols.
    public init(path: String, name: String) throws(LoadError) {
        self.name = name
        if path.hasSuffix(ResolvedManifest.suffix) {
            let manifest = try ResolvedManifest.load(path: path)
            self.tasks = manifest.tasks
            self.order = manifest.order
            self.refusals = []
            self.fini = nil
            return
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw LoadError(description: "cannot load the library: \(reason.replacingPath(path, with: name))")
        }
        guard let initSymbol = dlsym(handle, "fnhost_plugin_init") else {
            throw LoadError(description: "no fnhost_plugin_init symbol (export `int fnhost_plugin_init(const fnhost_api *, fnhost_registry *)` with C linkage)")
        }
        typealias InitFn = @convention(c) (UnsafePointer<fnhost_api>?, OpaquePointer?) -> Int32
        let initFn = unsafeBitCast(initSymbol, to: InitFn.self)
        let registry = RegistryContext(pluginName: name, library: handle)
        let unmanaged = Unmanaged.passRetained(registry)
        let rc = initFn(UnsafePointer(PluginAPI.table), OpaquePointer(unmanaged.toOpaque()))
        registry.open = false
        unmanaged.release()
        guard rc == 0 else {
            throw LoadError(description: "fnhost_plugin_init returned \(rc)" + (registry.initError.map { ": \($0)" } ?? " (no message set with set_init_error)"))
        }
        if registry.tasks.isEmpty && registry.refusals.isEmpty {
            throw LoadError(description: "fnhost_plugin_init registered no task")
        }
        self.tasks = registry.tasks
        self.order = registry.order
        self.refusals = registry.refusals
        self.fini = dlsym(handle, "fnhost_plugin_fini").map { unsafeBitCast($0, to: (@convention(c) () -> Void).self) }
    }

    /// The registered functions, in registration order.
    public func functions() -> [RegisteredFunction] {
        order.compactMap { tasks[$0] }.map { entry in
            let kind: RegisteredFunction.Kind
            switch entry.callable {
            case .task: kind = .task
            case .native(let n): kind = .native(signature: n.signature.description)
            }
            return RegisteredFunction(name: entry.name, kind: kind, options: entry.options, plugin: name)
        }
    }

    /// The registry as the worker reports it to the host:
    /// `{"tasks": [{"name", "kind", "signature", "options"}], "refused": [...]}`.
    public func registryJSON() -> [UInt8] {
        let items: [JSON] = order.compactMap { tasks[$0] }.map { entry in
            var o: JSONObject = ["name": .string(entry.name)]
            switch entry.callable {
            case .task: o["kind"] = "task"
            case .native(let n):
                o["kind"] = "native"
                o["signature"] = .string(n.signature.description)
            }
            o["options"] = entry.optionsJSON.flatMap { try? JSONParser.parse($0) } ?? .null
            return .object(o)
        }
        return JSONWriter.bytes(.object(["tasks": .array(items), "refused": .array(refusals.map { .string($0) })]))
    }

    /// Runs task `taskName` with the decoded body. Never throws: every problem is an outcome.
    public func run(taskName: String, taskId: String, retries: Int, body: TaskBody, softTimeLimit: Double?) -> TaskOutcome {
        guard let entry = tasks[taskName] else {
            return .failure(.notRegistered(taskName), traceback: nil)
        }
        switch entry.callable {
        case .native(let native):
            switch native.call(argsJSON: body.argsJSON, kwargsJSON: body.kwargsJSON) {
            case .success(let json): return .success(resultJSON: json)
            case .failure(let e): return .failure(e, traceback: nil)
            }
        case .task(let fn, let userdata):
            let ctx = CallContext(argsJSON: body.argsJSON, kwargsJSON: body.kwargsJSON, taskId: taskId, taskName: taskName,
                                  retries: retries, softDeadline: softTimeLimit.map { monotonicNow() + $0 })
            let status = withExtendedLifetime(ctx) {
                fn(OpaquePointer(Unmanaged.passUnretained(ctx).toOpaque()), userdata)
            }
            return Self.outcome(status: status, reported: ctx.reported, taskName: taskName)
        }
    }

    static func outcome(status: fnhost_status, reported: CallContext.Reported, taskName: String) -> TaskOutcome {
        switch status {
        case FNHOST_OK:
            switch reported {
            case .result(let json): return .success(resultJSON: json)
            case .invalidResult(let reason): return .failure(TaskException(type: "ValueError", module: "builtins", message: "\(taskName): \(reason)"), traceback: nil)
            default: return .success(resultJSON: Array("null".utf8))
            }
        case FNHOST_ERROR:
            if case .error(let type, let message) = reported {
                return .failure(TaskException(pluginType: type, message: message), traceback: nil)
            }
            return .failure(TaskException(type: "RuntimeError", module: "builtins", message: "\(taskName) returned FNHOST_ERROR without calling set_error"), traceback: nil)
        case FNHOST_RETRY:
            if case .retry(let countdown, let reason) = reported {
                return .retry(countdown: countdown >= 0 ? countdown : nil, reason: reason)
            }
            return .retry(countdown: nil, reason: "")
        default:
            return .failure(TaskException(type: "RuntimeError", module: "builtins", message: "\(taskName) returned an unknown status \(status.rawValue)"), traceback: nil)
        }
    }

    /// Calls the plugin's optional `fnhost_plugin_fini` (normal worker exit).
    public func finish() { fini?() }
}

extension String {
    func replacingPath(_ path: String, with name: String) -> String {
        guard !path.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: path) {
            result += rest[..<r.lowerBound] + name
            rest = rest[r.upperBound...]
        }
        return result + rest
    }
}
