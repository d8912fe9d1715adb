import FnHostPlugins
@testable import FnHostPool
import CeleryProtocol
import FnHostCore
import Foundation
import Testing

/// The file-system steps of loading a functions directory: which files count, trust, private
/// copies and resolved manifests. (Probing needs the fnhost executable: the interop suite.)
@Suite struct PluginLoaderTests {
    func directory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/fnhost-loader-XXXXXX".utf8CString)
        let made = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        let canonical = try #require(realpath(made, nil))
        defer { free(canonical) }
        let dir = String(cString: canonical)
        chmod(dir, 0o755)
        return dir
    }

    func write(_ text: String, _ path: String, mode: mode_t = 0o644) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
    }

    func loader(_ dir: String) -> PluginLoader {
        PluginLoader(functionsDirectory: dir + "/functions", stateDirectory: dir + "/state", executable: "/nonexistent", logLevel: 20)
    }

    @Test func listsPluginsAndManifestsOnly() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkdir(dir + "/functions", 0o755)
        for name in ["libb.so", "liba.so", "m.fnhost.yml", ".hidden.so", "libc.so.tmp", "notes.txt", ".fnhost.yml", "x.fnhost.yaml"] {
            try write("x", "\(dir)/functions/\(name)")
        }
        mkdir(dir + "/functions/libdir.so", 0o755)
        #expect(loader(dir).list() == ["liba.so", "libb.so", "m.fnhost.yml"])
    }

    @Test func aManifestLibraryByPathIsCopiedPrivatelyAndTheResolvedFormPointsAtTheCopy() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkdir(dir + "/functions", 0o755)
        mkdir(dir + "/functions/lib", 0o755)
        try write("not really ELF", "\(dir)/functions/lib/libfast.so")
        try write("library: lib/libfast.so\ntasks:\n  fast.sum: { symbol: fast_sum, signature: \"i64(i64,i64)\" }\n", "\(dir)/functions/fast.fnhost.yml")
        let path = try loader(dir).prepare("fast.fnhost.yml").get()
        #expect(path.hasPrefix(dir + "/state/plugins/"))
        #expect(path.hasSuffix("-fast.fnhost.json"))
        let resolved = try JSONParser.parse(try PrivateCopy.read(path))
        let library = try #require(resolved["library"]?.stringValue)
        #expect(library.hasPrefix(dir + "/state/plugins/") && library.hasSuffix("-libfast.so"))
        #expect(try PrivateCopy.read(library) == Array("not really ELF".utf8))
        #expect(resolved["library_name"] == "lib/libfast.so")
        // Rewriting the library changes the manifest's private path: a new version to probe.
        try write("rebuilt", "\(dir)/functions/lib/libfast.so")
        #expect(try loader(dir).prepare("fast.fnhost.yml").get() != path)
    }

    @Test func aManifestWhoseLibraryIsUntrustedOrMissingIsRefusedWithItsLine() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkdir(dir + "/functions", 0o755)
        try write("x", "\(dir)/functions/libopen.so", mode: 0o666)
        try write("# the library\nlibrary: ./libopen.so\ntasks: { a.b: { symbol: b, signature: void() } }\n", "\(dir)/functions/open.fnhost.yml")
        try write("library: ./libgone.so\ntasks: { a.c: { symbol: c, signature: void() } }\n", "\(dir)/functions/gone.fnhost.yml")
        let open = loader(dir).prepare("open.fnhost.yml")
        #expect(throws: PluginFailure.self) { try open.get() }
        if case .failure(let f) = open { #expect(f.reason.hasPrefix("open.fnhost.yml:2: library ./libopen.so: untrusted: the file")) }
        if case .failure(let f) = loader(dir).prepare("gone.fnhost.yml") {
            #expect(f.reason.hasPrefix("gone.fnhost.yml:1: library ./libgone.so: "))
        } else {
            Issue.record("a manifest naming a missing library was accepted")
        }
    }

    @Test func anUntrustedPluginIsRefusedBeforeAnyCopy() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        mkdir(dir + "/functions", 0o755)
        try write("x", "\(dir)/functions/libopen.so", mode: 0o646)
        guard case .failure(let f) = loader(dir).prepare("libopen.so") else {
            Issue.record("an other-writable plugin was accepted")
            return
        }
        #expect(f.plugin == "libopen.so")
        #expect(f.reason.contains("writable by other users"))
        #expect(access(dir + "/state/plugins", F_OK) != 0)
    }
}
