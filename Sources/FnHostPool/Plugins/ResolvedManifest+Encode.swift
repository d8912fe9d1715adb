import CeleryProtocol
import FnHostPlugins

/// The host writes resolved manifests; worker processes load them (`ResolvedManifest.load`).
extension ResolvedManifest {
    /// The resolved form of `manifest` (file `file`), loading `library` (a private copy, or a
    /// name for the dynamic loader).
    public static func encode(_ manifest: PluginManifest, file: String, library: String) -> [UInt8] {
        let tasks: [JSON] = manifest.tasks.map { task in
            .object([
                "name": .string(task.name), "symbol": .string(task.symbol), "signature": .string(task.signature.description),
                "options": .object(task.options), "line": .int(Int64(task.line)),
            ])
        }
        return JSONWriter.bytes(.object([
            "manifest": .string(file), "library": .string(library), "library_name": .string(manifest.library),
            "library_line": .int(Int64(manifest.libraryLine)), "tasks": .array(tasks),
        ]))
    }
}
