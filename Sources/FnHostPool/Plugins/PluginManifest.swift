import CeleryProtocol
import FnHostCore
import FnHostPlugins
import FnHostYAML

/// A manifest, `NAME.fnhost.yml` in the functions directory (plugin-abi.md): exposes functions
/// of a plain C library, which knows nothing of fnhost, as tasks called through libffi.
///
/// ```yaml
/// library: libm.so.6          # a path relative to the manifest, or a name the dynamic loader finds
/// tasks:
///   math.hypot: { symbol: hypot, signature: "f64(f64,f64)", queue: math }
///   math.floor: { symbol: floor, signature: "f64(f64)" }
/// ```
///
/// `parse` validates everything that can be known without loading the library (keys, task
/// names, signatures, task options) and every error names the file, the line and what is wrong.
/// Symbols are looked up when a worker process loads it (`ResolvedManifest`).
public struct PluginManifest: Sendable, Equatable {
    /// File names ending with this are manifests.
    public static let suffix = ".fnhost.yml"

    /// One task of the manifest.
    public struct Task: Sendable, Equatable {
        public var name: String
        /// The C symbol called.
        public var symbol: String
        public var signature: NativeSignature
        /// Task options (plugin-abi.md, "Task options"), already validated.
        public var options: JSONObject
        /// Where the task is declared (1-based).
        public var line: Int
    }

    /// Why a manifest was refused: `file:line: message`.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let file: String
        public let line: Int?
        public let message: String
        public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
    }

    /// `library:` as written.
    public var library: String
    public var libraryLine: Int
    /// In the order written.
    public var tasks: [Task]

    static let taskKeys: Set<String> = ["symbol", "signature"]

    /// Parses and validates the text of manifest `file` (the file name is used in messages).
    public static func parse(_ text: String, file: String) throws(Error) -> PluginManifest {
        func fail(_ node: YAMLNode?, _ message: String) -> Error { Error(file: file, line: node?.line, message: message) }
        let root: YAMLNode?
        do { root = try YAMLReader.read(text) } catch {
            throw Error(file: file, line: error.line, message: "invalid YAML: \(error.problem)")
        }
        guard let root, case .mapping(let top, _) = root else {
            throw fail(root, "a manifest is a mapping with `library:` and `tasks:`")
        }
        var library: (String, Int)?
        var tasksNode: YAMLNode?
        var seen = Set<String>()
        for (keyNode, value) in top {
            guard let key = keyNode.scalar?.text else { throw fail(keyNode, "keys must be strings") }
            guard seen.insert(key).inserted else { throw fail(keyNode, "`\(key)` appears twice") }
            switch key {
            case "library":
                guard let s = value.scalar?.text, value.scalar?.kind == .string, !s.isEmpty else {
                    throw fail(value, "`library` must be a library path (relative to the manifest) or a name such as libm.so.6")
                }
                library = (s, value.line)
            case "tasks":
                tasksNode = value
            default:
                throw fail(keyNode, "unknown key `\(key)` (a manifest has `library` and `tasks`)")
            }
        }
        guard let library else { throw fail(root, "`library:` is missing (a path relative to the manifest, or a name such as libm.so.6)") }
        guard let tasksNode else { throw fail(root, "`tasks:` is missing (task name -> { symbol, signature, options })") }
        guard case .mapping(let taskMap, _) = tasksNode, taskMap.count > 0 else {
            throw fail(tasksNode, "`tasks` must map task names to { symbol: ..., signature: ... }, and name at least one")
        }
        var tasks: [Task] = []
        var names = Set<String>()
        for (nameNode, spec) in taskMap {
            guard let name = nameNode.scalar?.text else { throw fail(nameNode, "a task name must be a string") }
            guard !name.isEmpty, name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == " " }) else {
                throw fail(nameNode, "task name \"\(name)\": a task name must be 1 to 255 bytes with no spaces or control characters")
            }
            guard names.insert(name).inserted else { throw fail(nameNode, "task \(name) appears twice") }
            guard case .mapping(let fields, _) = spec else {
                throw fail(spec, "task \(name): must be a mapping such as { symbol: hypot, signature: \"f64(f64,f64)\" }")
            }
            var symbol: String?
            var signature: NativeSignature?
            var options = JSONObject()
            var keys = Set<String>()
            for (keyNode, value) in fields {
                guard let key = keyNode.scalar?.text else { throw fail(keyNode, "task \(name): keys must be strings") }
                guard keys.insert(key).inserted else { throw fail(keyNode, "task \(name): `\(key)` appears twice") }
                switch key {
                case "symbol":
                    guard let s = value.scalar?.text, value.scalar?.kind == .string, !s.isEmpty, !s.contains(" ") else {
                        throw fail(value, "task \(name): `symbol` must be the name of a C function")
                    }
                    symbol = s
                case "signature":
                    guard let s = value.scalar?.text else { throw fail(value, "task \(name): `signature` must be a string such as \"f64(f64,f64)\"") }
                    do { signature = try NativeSignature(parsing: s) } catch { throw fail(value, "task \(name): \(error)") }
                default:
                    guard TaskOptions.knownKeys.contains(key) else {
                        throw fail(keyNode, "task \(name): unknown key `\(key)` (symbol, signature, or a task option: \(TaskOptions.knownKeys.joined(separator: ", ")))")
                    }
                    let json = value.json
                    var probe = TaskOptions()
                    do { try probe.apply(JSONObject([(key: key, value: json)])) } catch { throw fail(value, "task \(name): \(error)") }
                    options = JSONObject(options.entries + [(key: key, value: json)])
                }
            }
            guard let symbol else { throw fail(spec, "task \(name): `symbol` is missing (the C function to call)") }
            guard let signature else { throw fail(spec, "task \(name): `signature` is missing (for example \"f64(f64,f64)\")") }
            tasks.append(Task(name: name, symbol: symbol, signature: signature, options: options, line: nameNode.line))
        }
        return PluginManifest(library: library.0, libraryLine: library.1, tasks: tasks)
    }

    /// Whether `library` is a path (relative to the manifest, or absolute) rather than a name
    /// the dynamic loader looks up in its own directories.
    public var libraryIsPath: Bool { library.contains("/") }
}
