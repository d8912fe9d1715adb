// FnHostKit: write fnhost task plugins in Swift. A thin layer over the C ABI in fnhost.h.
//
//     import FnHostKit
//
//     @_cdecl("fnhost_plugin_init")
//     public func fnhostPluginInit(_ api: UnsafePointer<fnhost_api>?, _ registry: OpaquePointer?) -> Int32 {
//         FnHostPlugin.initialize(api: api, registry: registry) { plugin in
//             try plugin.task("text.upper") { (s: String) in s.uppercased() }
//         }
//     }
//
// Link FnHostKit statically into the plugin's dynamic library (a SwiftPM `.library(type:
// .dynamic)` product that depends on it does that): the plugin then needs nothing of fnhost at
// link time, as the ABI requires. To keep FnHostKit's symbols private to the plugin (only
// fnhost_plugin_init/fini exported), link with a version script, as the `text` example does:
// linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=exports.map"])] (see
// functions/src/text/exports.map).

@_exported import CFnHostABI

/// The registration handle a plugin's init body receives: it turns Swift closures into fnhost
/// tasks. It is only valid inside ``initialize(api:registry:_:)``.
public final class FnHostPlugin {
    /// The host's API table. It stays valid for as long as the plugin is loaded.
    let api: UnsafePointer<fnhost_api>
    /// The host's registry; nil once init has returned.
    private var registry: OpaquePointer?

    private init(api: UnsafePointer<fnhost_api>, registry: OpaquePointer) {
        self.api = api
        self.registry = registry
    }

    /// Implements `fnhost_plugin_init`: checks that the host offers ABI version 1, runs `body`
    /// to register the plugin's tasks, and returns the status the host expects.
    ///
    /// An error thrown by `body` (for example a refused registration) refuses the load: it is
    /// reported with `set_init_error` and the result is non-zero.
    /// - Returns: 0 when the plugin loaded, non-zero when it refuses the load.
    public static func initialize(
        api: UnsafePointer<fnhost_api>?,
        registry: OpaquePointer?,
        _ body: (FnHostPlugin) throws -> Void
    ) -> Int32 {
        guard let api, let registry else { return 1 }
        // The table only grows: a newer host is fine, an older or truncated table is not. Read
        // only the two leading fields before the size is known to be large enough.
        let abiVersion = api.pointee.abi_version
        let structSize = Int(api.pointee.struct_size)
        guard abiVersion >= UInt32(FNHOST_ABI_VERSION), structSize >= MemoryLayout<fnhost_api>.size else {
            let setErrorEnd = MemoryLayout<fnhost_api>.offset(of: \fnhost_api.set_init_error)!
                + MemoryLayout<UnsafeRawPointer>.size
            if abiVersion >= 1, structSize >= setErrorEnd, let setInitError = api.pointee.set_init_error {
                setInitError(registry, "plugin built for fnhost ABI \(FNHOST_ABI_VERSION); host offers \(abiVersion) (\(structSize) bytes)")
            }
            return 1
        }
        let plugin = FnHostPlugin(api: api, registry: registry)
        defer { plugin.registry = nil }
        do {
            try body(plugin)
            return 0
        } catch {
            api.pointee.set_init_error?(registry, String(describing: error))
            return 1
        }
    }

    /// Registers a task whose positional arguments are decoded from JSON into the closure's
    /// parameter types and whose result is encoded to JSON.
    ///
    ///     try plugin.task("math.hypot") { (x: Double, y: Double) in (x * x + y * y).squareRoot() }
    ///
    /// A wrong argument count or type, or any keyword argument, fails the call with
    /// `TypeError` without running `body`. An error thrown by `body` fails the call (see
    /// ``TaskFailure`` and ``FnHostRetry``). The host may call `body` from any thread.
    /// - Throws: ``RegistrationError`` if the host refuses the registration.
    public func task<each A: Decodable, R: Encodable>(
        _ name: String,
        options: TaskOptions? = nil,
        _ body: @escaping @Sendable (repeat each A) throws -> R
    ) throws {
        try register(name, options: options) { context in
            let args: (repeat each A) = try context.decodeArguments()
            return try encodeResult(body(repeat each args), task: name)
        }
    }

    /// Registers a task like the overload above, whose closure also
    /// gets the call's ``TaskContext`` (task id, retries, should-stop, log) first.
    ///
    ///     try plugin.task("text.whoami") { (context: TaskContext) in context.taskID }
    public func task<each A: Decodable, R: Encodable>(
        _ name: String,
        options: TaskOptions? = nil,
        _ body: @escaping @Sendable (TaskContext, repeat each A) throws -> R
    ) throws {
        try register(name, options: options) { context in
            let args: (repeat each A) = try context.decodeArguments()
            return try encodeResult(body(context, repeat each args), task: name)
        }
    }

    /// Registers a task that handles JSON itself: it reads ``TaskContext/argumentsJSON`` and
    /// ``TaskContext/keywordArgumentsJSON`` and returns the result as JSON text (nil: `null`).
    /// The returned text is passed to the host as is, so it must be valid JSON.
    public func rawTask(
        _ name: String,
        options: TaskOptions? = nil,
        _ body: @escaping @Sendable (TaskContext) throws -> String?
    ) throws {
        try register(name, options: options) { context in
            try body(context).map { Array($0.utf8) }
        }
    }

    /// Registers a plain C function, called by the host through libffi per `signature`
    /// (`"f64(f64,f64)"`, see plugin-abi.md). For example:
    ///
    ///     let half: @convention(c) (Double) -> Double = { $0 / 2 }
    ///     try plugin.native("math.half", symbol: unsafeBitCast(half, to: UnsafeRawPointer.self), signature: "f64(f64)")
    /// - Throws: ``RegistrationError`` if the host refuses the registration.
    public func native(
        _ name: String,
        symbol: UnsafeRawPointer,
        signature: String,
        options: TaskOptions? = nil
    ) throws {
        guard let registry, let registerNative = api.pointee.register_native else {
            throw RegistrationError(task: name, reason: "registration is only possible during init")
        }
        let optionsJSON = try options?.json()
        let status = withOptionalCString(optionsJSON) { options in
            registerNative(registry, name, UnsafeMutableRawPointer(mutating: symbol), signature, options)
        }
        if status != 0 {
            throw RegistrationError(task: name, reason: "the host refused it (its log says why)")
        }
    }

    /// Registers `run` through `register_task`; the box it lives in is kept for the life of
    /// the process (the host may call the task until the process exits).
    private func register(
        _ name: String,
        options: TaskOptions?,
        _ run: @escaping (TaskContext) throws -> [UInt8]?
    ) throws {
        guard let registry, let registerTask = api.pointee.register_task else {
            throw RegistrationError(task: name, reason: "registration is only possible during init")
        }
        let optionsJSON = try options?.json()
        let box = Unmanaged.passRetained(TaskBox(api: api, run: run))
        let status = withOptionalCString(optionsJSON) { options in
            registerTask(registry, name, { call, userdata in
                Unmanaged<TaskBox>.fromOpaque(userdata!).takeUnretainedValue().call(call!)
            }, box.toOpaque(), options)
        }
        if status != 0 {
            box.release()
            throw RegistrationError(task: name, reason: "the host refused it (its log says why)")
        }
    }
}

/// One registered task: the closure plus the API table to report its outcome with.
private final class TaskBox {
    let api: UnsafePointer<fnhost_api>
    let run: (TaskContext) throws -> [UInt8]?

    init(api: UnsafePointer<fnhost_api>, run: @escaping (TaskContext) throws -> [UInt8]?) {
        self.api = api
        self.run = run
    }

    /// Runs the task and turns its outcome into one of set_result_json / set_error / set_retry.
    func call(_ call: OpaquePointer) -> fnhost_status {
        let api = self.api.pointee
        do {
            if let json = try run(TaskContext(api: self.api, call: call)) {
                json.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { api.set_result_json?(call, $0.baseAddress, $0.count) }
                }
            }
            return FNHOST_OK
        } catch let retry as FnHostRetry {
            api.set_retry?(call, retry.countdown ?? -1, retry.reason)
            return FNHOST_RETRY
        } catch let failure as TaskFailure {
            api.set_error?(call, failure.type, failure.message)
            return FNHOST_ERROR
        } catch {
            api.set_error?(call, String(describing: type(of: error)), String(describing: error))
            return FNHOST_ERROR
        }
    }
}

/// Calls `body` with a C string for `string`, or with NULL when it is nil.
private func withOptionalCString<T>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
