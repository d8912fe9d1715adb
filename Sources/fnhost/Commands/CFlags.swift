import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost cflags`: the compiler flags that find `fnhost.h`.
struct CFlags: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cflags", abstract: "Print the C compiler flags that find fnhost.h.",
        discussion: "cc -shared -fPIC $(fnhost cflags) -o functions/libmath.so math.c")

    func run() throws {
        guard let dir = Self.includeDirectory() else {
            throw ValidationError("cannot find fnhost.h (set FNHOST_INCLUDE_DIR to the directory that holds it)")
        }
        print("-I\(dir)")
    }

    /// `$FNHOST_INCLUDE_DIR`, then `<prefix>/include/fnhost` next to the installed binary, then
    /// the source tree the binary was built from.
    static func includeDirectory() -> String? {
        var candidates: [String] = []
        if let env = getenv("FNHOST_INCLUDE_DIR") { candidates.append(String(cString: env)) }
        let exe = WorkerProcessPath.executable
        if let slash = exe.lastIndex(of: "/") {
            let bin = String(exe[..<slash])
            candidates.append(bin + "/../include/fnhost")
        }
        let source = #filePath
        if let range = source.firstRange(of: "/Sources/fnhost/") {
            candidates.append(String(source[..<range.lowerBound]) + "/Sources/CFnHostABI/include")
        }
        for dir in candidates where access(dir + "/fnhost.h", R_OK) == 0 {
            return canonical(dir)
        }
        return nil
    }

    static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

import FnHostPool

enum WorkerProcessPath {
    static var executable: String { WorkerProcess.currentExecutable() }
}
