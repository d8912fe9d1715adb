import FnHostPlugins
import FnHostPool
import Foundation
import Testing

/// `PrivateCopyStore`: copies are claimed while in use, and `collect` removes only the copies no
/// process claims. Two stores in one test stand for two processes: `flock` locks belong to an
/// open file, so one store's claims hold against the other's collector as another process's do.
@Suite struct PrivateCopyStoreTests {
    private func temporaryDirectory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/fnhost-copy-store-XXXXXX".utf8CString)
        return try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    }

    private func names(in directory: String) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") })
    }

    @Test func collectRemovesTheCopiesNoLongerClaimedAndKeepsTheOthers() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = PrivateCopyStore(directory: root + "/plugins")
        let serving = try store.store(Array("version two".utf8), name: "libdemo.so")
        let old = try store.store(Array("version one".utf8), name: "libdemo.so")
        #expect(store.collect().isEmpty)  // both claimed
        store.keepClaims(only: [serving])
        #expect(store.claimed == [serving])
        #expect(store.collect() == [String(old.split(separator: "/").last!)])
        #expect(try names(in: store.directory) == [String(serving.split(separator: "/").last!)])
    }

    @Test func anotherProcesssClaimKeepsACopyUntilItIsReleased() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = PrivateCopyStore(directory: root + "/plugins")
        let other = PrivateCopyStore(directory: root + "/plugins")
        let path = try host.store(Array("served".utf8), name: "libdemo.so")
        #expect(other.collect().isEmpty)
        #expect(FileManager.default.fileExists(atPath: path))
        // The same content from the other host: the same path, claimed by both.
        #expect(try other.store(Array("served".utf8), name: "libdemo.so") == path)
        host.keepClaims(only: [])
        #expect(host.collect().isEmpty)
        other.keepClaims(only: [])
        #expect(host.collect().count == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
        // Stored again, it comes back, claimed.
        #expect(try host.store(Array("served".utf8), name: "libdemo.so") == path)
        #expect(other.collect().isEmpty && FileManager.default.fileExists(atPath: path))
    }

    @Test func aManifestKeepsTheLibraryItNamesClaimed() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = PrivateCopyStore(directory: root + "/plugins")
        let library = try store.store(Array("code".utf8), name: "libimpl.so")
        let manifest = try store.store(Array("{\"library\": \"\(library)\"}".utf8), name: "impl.fnhost.json", library: library)
        store.keepClaims(only: [manifest])
        #expect(store.claimed == [manifest, library])
        #expect(PrivateCopyStore(directory: store.directory).collect().isEmpty)
        store.keepClaims(only: [])
        #expect(PrivateCopyStore(directory: store.directory).collect().count == 2)
    }

    @Test func aStoreThatGoesAwayReleasesItsClaims() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var store: PrivateCopyStore? = PrivateCopyStore(directory: root + "/plugins")
        _ = try store!.store(Array("x".utf8), name: "libx.so")
        let collector = PrivateCopyStore(directory: root + "/plugins")
        #expect(collector.collect().isEmpty)
        store = nil  // as a process's claims go when it exits
        #expect(collector.collect().count == 1)
    }

    @Test func onlyStaleTemporaryFilesAreRemovedAndHiddenFilesAreLeft() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = PrivateCopyStore(directory: root + "/plugins")
        _ = try store.store(Array("x".utf8), name: "libx.so")
        let stale = store.directory + "/abc-libx.so.tmp.1"
        let fresh = store.directory + "/abc-libx.so.tmp.2"
        FileManager.default.createFile(atPath: stale, contents: Data("partial".utf8))
        FileManager.default.createFile(atPath: fresh, contents: Data("partial".utf8))
        FileManager.default.createFile(atPath: store.directory + "/.hidden", contents: Data())
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: stale)
        #expect(store.collect() == ["abc-libx.so.tmp.1"])
        #expect(FileManager.default.fileExists(atPath: fresh))
        #expect(FileManager.default.fileExists(atPath: store.directory + "/.hidden"))
        #expect(FileManager.default.fileExists(atPath: store.directory + "/.lock"))
    }
}
