import FnHostCore
@testable import FnHostPool
import Foundation
import Testing

@Suite struct DirectoryWatcherTests {
    final class Seen: @unchecked Sendable {
        let lock = ConditionLock()
        var names: [String] = []
        func add(_ name: String) { lock.withLock { names.append(name) } }
        var all: [String] { lock.withLock { names } }
    }

    @Test func reportsPluginAndManifestChangesAndIgnoresOtherFiles() throws {
        var template = Array("\(NSTemporaryDirectory())/fnhost-watch-XXXXXX".utf8CString)
        let dir = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seen = Seen()
        let watcher = try DirectoryWatcher(directory: dir) { seen.add($0) }
        defer { watcher.stop() }

        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.txt"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(dir)/.libnew.so.tmp"))
        rename("\(dir)/.libnew.so.tmp", "\(dir)/libnew.so")        // write, then rename
        try Data("y".utf8).write(to: URL(fileURLWithPath: "\(dir)/libm.fnhost.yml"))
        unlink("\(dir)/libnew.so")
        #expect(eventually { seen.all.filter { $0 == "libnew.so" }.count >= 2 && seen.all.contains("libm.fnhost.yml") })
        #expect(!seen.all.contains("notes.txt"))
        #expect(!seen.all.contains(".libnew.so.tmp"))
    }

    @Test func aDirectorySwappedInAtThePathIsWatchedAgain() throws {
        var template = Array("\(NSTemporaryDirectory())/fnhost-watch-XXXXXX".utf8CString)
        let root = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = "\(root)/functions"
        mkdir(dir, 0o755)
        let seen = Seen()
        let watcher = try DirectoryWatcher(directory: dir) { seen.add($0) }
        defer { watcher.stop() }
        mkdir("\(root)/next", 0o755)
        rename(dir, "\(root)/old")
        rename("\(root)/next", dir)
        #expect(eventually { seen.all.contains("") })
        // Changes in the new directory are seen.
        #expect(eventually {
            try? Data("x".utf8).write(to: URL(fileURLWithPath: "\(dir)/libswapped.so"))
            return seen.all.contains("libswapped.so")
        })
    }

    @Test func parsesInotifyEventRecords() {
        func record(_ name: String, mask: UInt8, padded: Int) -> [UInt8] {
            var bytes: [UInt8] = [1, 0, 0, 0, mask, 0, 0, 0, 0, 0, 0, 0, UInt8(padded), 0, 0, 0]
            bytes += Array(name.utf8) + [UInt8](repeating: 0, count: padded - name.utf8.count)
            return bytes
        }
        let bytes = record("libmath.so", mask: 8, padded: 16) + record("", mask: 4, padded: 0) + record("a.fnhost.yml", mask: 0x80, padded: 32)
        let events = DirectoryWatcher.events(in: bytes[...])
        #expect(events.map(\.name) == ["libmath.so", "", "a.fnhost.yml"])
        #expect(events.map(\.mask) == [8, 4, 0x80])
        #expect(events.map(\.watch) == [1, 1, 1])
    }

    func eventually(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = monotonicNow() + timeout
        while !condition() {
            if monotonicNow() > deadline { return false }
            sleepSeconds(0.01)
        }
        return true
    }
}
