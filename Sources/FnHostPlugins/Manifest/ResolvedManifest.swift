import CeleryProtocol
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// A manifest as a worker process loads it: validated by the host, its library resolved (a
/// path is replaced by the library's private copy), written as JSON to the manifest's own
/// private, content-addressed path (`<sha256>-NAME.fnhost.json`). Workers need no YAML.
///
/// `{"manifest": "libm.fnhost.yml", "library": "<path or name>", "library_name": "libm.so.6",
///   "tasks": [{"name", "symbol", "signature", "options", "line"}]}`
public enum ResolvedManifest {
    /// File names ending with this are resolved manifests.
    public static let suffix = ".fnhost.json"

    /// Loads the library and looks up every symbol: the registry of the manifest's tasks.
    /// A library that does not load or a symbol that is missing refuses the whole manifest,
    /// with the manifest's file name and line.
    static func load(path: String) throws(LoadedPlugin.LoadError) -> (tasks: [String: LoadedPlugin.Entry], order: [String]) {
        let bytes: [UInt8]
        do { bytes = try PrivateCopy.read(path) } catch { throw LoadedPlugin.LoadError(description: error.description) }
        guard let doc = try? JSONParser.parse(bytes), let file = doc["manifest"]?.stringValue, let library = doc["library"]?.stringValue,
              let libraryName = doc["library_name"]?.stringValue, case .array(let items)? = doc["tasks"] else {
            throw LoadedPlugin.LoadError(description: "the resolved manifest \(path) is unreadable")
        }
        let libraryLine = doc["library_line"]?.intValue ?? 1
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            let reason = (dlerror().map { String(cString: $0) } ?? "unknown error").replacingPath(library, with: libraryName)
            throw LoadedPlugin.LoadError(description: "\(file):\(libraryLine): cannot load library \(libraryName): \(reason)")
        }
        var tasks: [String: LoadedPlugin.Entry] = [:]
        var order: [String] = []
        for item in items {
            guard let name = item["name"]?.stringValue, let symbolName = item["symbol"]?.stringValue,
                  let text = item["signature"]?.stringValue, let line = item["line"]?.intValue else {
                throw LoadedPlugin.LoadError(description: "the resolved manifest \(path) is unreadable")
            }
            _ = dlerror()
            guard let symbol = dlsym(handle, symbolName) else {
                throw LoadedPlugin.LoadError(description: "\(file):\(line): task \(name): no symbol \(symbolName) in \(libraryName)")
            }
            let options = item["options"] ?? .object([:])
            let optionsJSON = JSONWriter.string(options)
            let native: NativeFunction
            let parsed: TaskOptions
            do {
                native = try NativeFunction(name: name, symbol: symbol, signature: NativeSignature(parsing: text))
                parsed = try TaskOptions.parse(json: optionsJSON)
            } catch {
                throw LoadedPlugin.LoadError(description: "\(file):\(line): task \(name): \(error)")
            }
            tasks[name] = LoadedPlugin.Entry(name: name, callable: .native(native), options: parsed, optionsJSON: optionsJSON)
            order.append(name)
        }
        return (tasks, order)
    }
}
