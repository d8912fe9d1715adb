import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost new NAME --lang c|swift`: scaffolds a plugin that builds and passes its own test.
struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new plugin (C or Swift) that builds and passes its own test.",
        discussion: """
            fnhost new imaging --lang c     creates ./imaging with imaging.c and a Makefile:
            cd imaging && make test && make install
            """)

    @Argument(help: "The plugin's name: a lower-case C identifier; its tasks are NAME.add, ...")
    var name: String

    @Option(name: .long, help: "c or swift.")
    var lang: String = "c"

    @Option(name: .long, help: "Where to create it (default: ./NAME). It must not exist.")
    var directory: String?

    @Option(name: .long, help: "Where `make install` puts it (default: functions_dir from the config, else ./functions).")
    var functions: String?

    func run() throws {
        if let problem = PluginTemplate.problem(with: name) { throw ValidationError(problem) }
        guard let language = PluginTemplate.Language(rawValue: lang.lowercased()) else {
            throw ValidationError("--lang must be c or swift")
        }
        let target = directory ?? name
        guard access(target, F_OK) != 0 else { throw FnHostError("\(target) already exists; choose another --directory") }
        let sourceRoot = Self.sourceRoot()
        if language == .swift && sourceRoot == nil {
            throw FnHostError("a Swift plugin depends on FnHostKit from the fnhost source tree, which was not found (set FNHOST_SOURCE_DIR)")
        }
        let template = PluginTemplate(name: name, language: language, fnhost: WorkerProcessPath.executable,
                                      functionsDirectory: CFlags.canonical(functions ?? "functions"), sourceRoot: sourceRoot)
        for (path, content) in template.files {
            let full = target + "/" + path
            try Self.makeDirectories(for: full)
            guard let f = fopen(full, "wx") else { throw FnHostError("cannot create \(full): \(String(cString: strerror(errno)))") }
            let bytes = Array(content.utf8)
            let written = fwrite(bytes, 1, bytes.count, f)
            fclose(f)
            guard written == bytes.count else { throw FnHostError("cannot write \(full)") }
        }
        print("created \(target) (\(language.rawValue) plugin \(name)): cd \(target) && make test && make install")
    }

    static func makeDirectories(for file: String) throws {
        var partial = file.hasPrefix("/") ? "" : "."
        for part in file.split(separator: "/").dropLast() {
            partial += "/" + part
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw FnHostError("cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// `$FNHOST_SOURCE_DIR`, else the source tree this binary was built from.
    static func sourceRoot() -> String? {
        var candidates: [String] = []
        if let env = getenv("FNHOST_SOURCE_DIR") { candidates.append(String(cString: env)) }
        let source = #filePath
        if let range = source.firstRange(of: "/Sources/fnhost/") { candidates.append(String(source[..<range.lowerBound])) }
        for dir in candidates where access(dir + "/Sources/FnHostKit", R_OK) == 0 { return CFlags.canonical(dir) }
        return nil
    }
}
