import CFnHostABI
import CeleryProtocol
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// The `fnhost_api` table handed to plugins (ABI version 1): C function pointers that reach the
/// host's state through the opaque `fnhost_registry *` and `fnhost_call *` handles.
///
/// Built once per process and never freed, so a plugin may keep the pointer.
enum PluginAPI {
    nonisolated(unsafe) static let table: UnsafeMutablePointer<fnhost_api> = {
        let api = UnsafeMutablePointer<fnhost_api>.allocate(capacity: 1)
        api.initialize(to: fnhost_api())
        api.pointee.abi_version = UInt32(FNHOST_ABI_VERSION)
        api.pointee.struct_size = UInt32(MemoryLayout<fnhost_api>.size)
        api.pointee.register_task = { registry, name, fn, userdata, options in
            guard let ctx = PluginAPI.registry(registry), let name else { return 1 }
            guard let fn else { return ctx.refuse(String(cString: name), "the task function is NULL") }
            return ctx.register(String(cString: name), .task(fn: fn, userdata: userdata), options: options.map { String(cString: $0) })
        }
        api.pointee.register_native = { registry, name, symbol, signature, options in
            guard let ctx = PluginAPI.registry(registry), let name else { return 1 }
            let taskName = String(cString: name)
            guard let symbol else { return ctx.refuse(taskName, "the symbol is NULL") }
            guard let signature else { return ctx.refuse(taskName, "no signature given") }
            let native: NativeFunction
            do {
                native = try NativeFunction(name: taskName, symbol: symbol, signature: NativeSignature(parsing: String(cString: signature)))
            } catch {
                return ctx.refuse(taskName, "\(error)")
            }
            return ctx.register(taskName, .native(native), options: options.map { String(cString: $0) })
        }
        api.pointee.set_init_error = { registry, message in
            guard let ctx = PluginAPI.registry(registry), let message else { return }
            ctx.initError = String(cString: message)
        }
        api.pointee.args_json = { call, len in
            guard let ctx = PluginAPI.call(call) else { len?.pointee = 2; return PluginAPI.emptyArray }
            len?.pointee = ctx.argsLength
            return ctx.args.withUnsafeBufferPointer { $0.baseAddress }
        }
        api.pointee.kwargs_json = { call, len in
            guard let ctx = PluginAPI.call(call) else { len?.pointee = 2; return PluginAPI.emptyObject }
            len?.pointee = ctx.kwargsLength
            return ctx.kwargs.withUnsafeBufferPointer { $0.baseAddress }
        }
        api.pointee.set_result_json = { call, json, len in
            guard let ctx = PluginAPI.call(call) else { return }
            guard let json else { ctx.reported = .result(Array("null".utf8)); return }
            let bytes = Array(UnsafeRawBufferPointer(start: json, count: len))
            do {
                _ = try JSONParser.parse(bytes)
                ctx.reported = .result(bytes)
            } catch {
                ctx.reported = .invalidResult("set_result_json was given invalid JSON: \(error)")
            }
        }
        api.pointee.set_error = { call, excType, message in
            guard let ctx = PluginAPI.call(call) else { return }
            ctx.reported = .error(type: excType.map { String(cString: $0) } ?? "Exception", message: message.map { String(cString: $0) } ?? "")
        }
        api.pointee.set_retry = { call, countdown, reason in
            guard let ctx = PluginAPI.call(call) else { return }
            ctx.reported = .retry(countdown: countdown, reason: reason.map { String(cString: $0) } ?? "")
        }
        api.pointee.task_id = { call in PluginAPI.call(call)?.taskId.withUnsafeBufferPointer { $0.baseAddress } ?? PluginAPI.emptyString }
        api.pointee.task_name = { call in PluginAPI.call(call)?.taskName.withUnsafeBufferPointer { $0.baseAddress } ?? PluginAPI.emptyString }
        api.pointee.retries = { call in PluginAPI.call(call)?.retries ?? 0 }
        api.pointee.should_stop = { call in
            guard let deadline = PluginAPI.call(call)?.softDeadline else { return 0 }
            return monotonicNow() >= deadline ? 1 : 0
        }
        api.pointee.log = { call, level, message in
            guard let message else { return }
            let ctx = PluginAPI.call(call)
            let name = ctx?.name ?? "plugin"
            let id = ctx?.id ?? ""
            let label: String
            switch level {
            case ..<20: label = "debug"
            case ..<30: label = "info"
            case ..<40: label = "warning"
            case ..<50: label = "error"
            default: label = "critical"
            }
            guard level >= PluginAPI.logThreshold else { return }
            WorkerLog.write("\(label) [\(name)[\(id)]] \(String(cString: message))")
        }
        return api
    }()

    /// Plugin log calls below this level are dropped (set from the host's `--loglevel`).
    nonisolated(unsafe) static var logThreshold: Int32 = 20

    nonisolated(unsafe) static let emptyArray: UnsafePointer<CChar> = makeCString("[]")
    nonisolated(unsafe) static let emptyObject: UnsafePointer<CChar> = makeCString("{}")
    nonisolated(unsafe) static let emptyString: UnsafePointer<CChar> = makeCString("")

    static func makeCString(_ s: String) -> UnsafePointer<CChar> {
        let bytes = Array(s.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return UnsafePointer(p)
    }

    static func registry(_ handle: OpaquePointer?) -> RegistryContext? {
        guard let handle else { return nil }
        return Unmanaged<RegistryContext>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    static func call(_ handle: OpaquePointer?) -> CallContext? {
        guard let handle else { return nil }
        return Unmanaged<CallContext>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }
}

extension RegistryContext {
    func refuse(_ name: String, _ reason: String) -> Int32 {
        let message = "\(pluginName): refused task '\(name)': \(reason)"
        refusals.append(message)
        WorkerLog.write("error \(message)")
        return 1
    }

    func register(_ name: String, _ kind: LoadedPlugin.Callable, options: String?) -> Int32 {
        guard open else { return refuse(name, "registration is only possible inside fnhost_plugin_init") }
        guard !name.isEmpty, name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == " " }) else {
            return refuse(name, "a task name must be 1 to 255 bytes with no spaces or control characters")
        }
        guard tasks[name] == nil else { return refuse(name, "duplicate task name in this plugin") }
        do {
            let parsed = try TaskOptions.parse(json: options)
            tasks[name] = LoadedPlugin.Entry(name: name, callable: kind, options: parsed, optionsJSON: options)
            order.append(name)
            return 0
        } catch {
            return refuse(name, error.description)
        }
    }
}

/// Writes the worker process's own log lines to stderr, which the host shares.
public enum WorkerLog {
    /// Plugin `log` calls below this Python logging level (10 debug .. 50 critical) are dropped.
    public static func setPluginThreshold(_ level: Int32) { PluginAPI.logThreshold = level }

    public static func write(_ line: String) {
        let bytes = Array("fnhost-worker[\(getpid())] \(line)\n".utf8)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
