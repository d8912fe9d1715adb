import CFnHostABI
import CeleryProtocol

/// The state behind one `fnhost_call *`: the inputs handed out to the plugin (kept alive until
/// the task function returns) and the outcome it sets.
final class CallContext {
    enum Reported {
        case none
        case result([UInt8])
        case invalidResult(String)
        case error(type: String, message: String)
        case retry(countdown: Double, reason: String)
    }

    let args: [CChar]
    let kwargs: [CChar]
    let argsLength: Int
    let kwargsLength: Int
    let taskId: [CChar]
    let taskName: [CChar]
    let id: String
    let name: String
    let retries: Int32
    /// Monotonic time after which `should_stop` says 1 (the soft time limit).
    let softDeadline: Double?
    var reported = Reported.none

    init(argsJSON: [UInt8], kwargsJSON: [UInt8], taskId: String, taskName: String, retries: Int, softDeadline: Double?) {
        self.args = argsJSON.map { CChar(bitPattern: $0) } + [0]
        self.kwargs = kwargsJSON.map { CChar(bitPattern: $0) } + [0]
        self.argsLength = argsJSON.count
        self.kwargsLength = kwargsJSON.count
        self.id = taskId
        self.name = taskName
        self.taskId = Array(taskId.utf8CString)
        self.taskName = Array(taskName.utf8CString)
        self.retries = Int32(clamping: retries)
        self.softDeadline = softDeadline
    }
}

/// The state behind one `fnhost_registry *`, valid while `fnhost_plugin_init` runs.
final class RegistryContext {
    let pluginName: String
    let library: UnsafeMutableRawPointer
    var tasks: [String: LoadedPlugin.Entry] = [:]
    var order: [String] = []
    var refusals: [String] = []
    var initError: String?
    var open = true

    init(pluginName: String, library: UnsafeMutableRawPointer) {
        self.pluginName = pluginName
        self.library = library
    }
}
