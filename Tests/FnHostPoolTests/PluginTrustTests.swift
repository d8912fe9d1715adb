import FnHostPlugins
import FnHostPool
import Foundation
import Testing

@Suite struct PluginTrustTests {
    let me: UInt32 = 1000
    var trust: PluginTrust { PluginTrust(policy: .enforce, user: me) }

    func file(owner: UInt32 = 1000, mode: UInt32) -> PluginTrust.Status { .init(owner: owner, mode: mode, isDirectory: false) }
    func directory(owner: UInt32 = 1000, mode: UInt32) -> PluginTrust.Status { .init(owner: owner, mode: mode, isDirectory: true) }

    @Test func ownFilesWritableOnlyByTheOwnerAreTrusted() {
        #expect(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o644)) == nil)
        #expect(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o755)) == nil)
        #expect(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o400)) == nil)
        #expect(trust.evaluate(path: "/f", status: directory(mode: 0o700)) == nil)
    }

    @Test func rootOwnedFilesAreTrusted() {
        #expect(trust.evaluate(path: "/usr/lib/libm.so", status: file(owner: 0, mode: 0o644)) == nil)
        #expect(trust.evaluate(path: "/usr/lib", status: directory(owner: 0, mode: 0o755)) == nil)
    }

    @Test func worldWritableFileIsRefusedNamingThePathAndWhy() throws {
        let reason = try #require(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o666)))
        #expect(reason.contains("the file /f/libm.so"))
        #expect(reason.contains("writable by its group and other users"))
        #expect(reason.contains("mode 0666"))
        #expect(reason.contains("--allow-untrusted-plugins"))
    }

    @Test func groupWritableFileIsRefused() throws {
        let reason = try #require(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o664)))
        #expect(reason.contains("writable by its group (mode 0664)"))
    }

    @Test func otherWritableOnlyIsRefused() throws {
        let reason = try #require(trust.evaluate(path: "/f/libm.so", status: file(mode: 0o646)))
        #expect(reason.contains("writable by other users (mode 0646)"))
    }

    @Test func writableDirectoryIsRefusedEvenWithTheStickyBit() throws {
        let reason = try #require(trust.evaluate(path: "/tmp", status: directory(owner: 0, mode: 0o1777)))
        #expect(reason.contains("the directory /tmp is writable by its group and other users (mode 1777)"))
    }

    @Test func fileOwnedByAnotherUserIsRefused() throws {
        let reason = try #require(trust.evaluate(path: "/f/libm.so", status: file(owner: 4242, mode: 0o644)))
        #expect(reason.contains("the file /f/libm.so is owned by uid 4242"))
        #expect(reason.contains("not by the user running fnhost"))
    }

    @Test func directoryOwnedByAnotherUserIsRefused() throws {
        let reason = try #require(trust.evaluate(path: "/f", status: directory(owner: 4242, mode: 0o755)))
        #expect(reason.contains("the directory /f is owned by uid 4242"))
    }

    @Test func allowingUntrustedPluginsChecksNothing() {
        let open = PluginTrust(policy: .allowUntrusted, user: me)
        #expect(open.evaluate(path: "/f/libm.so", status: file(owner: 4242, mode: 0o666)) == nil)
        #expect(open.check(file: "/nonexistent/libm.so") == nil)
    }

    // The I/O edge, on real files.

    func temporaryDirectory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/fnhost-trust-XXXXXX".utf8CString)
        let made = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        // Canonical (no `//`, no symbolic links), as messages about link targets spell it.
        let canonical = try #require(realpath(made, nil))
        defer { free(canonical) }
        return String(cString: canonical)
    }

    @Test func checkReadsTheFileAndItsDirectory() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let real = PluginTrust(policy: .enforce)
        let path = "\(root)/libdemo.so"
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        chmod(root, 0o755)
        chmod(path, 0o644)
        #expect(real.check(file: path) == nil)

        chmod(path, 0o666)
        #expect(real.check(file: path)?.contains("the file \(path) is writable") == true)

        chmod(path, 0o644)
        chmod(root, 0o777)
        #expect(real.check(file: path)?.contains("the directory \(root) is writable") == true)
    }

    @Test func checkFollowsSymbolicLinksToTheirTarget() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        chmod(root, 0o755)
        let open = "\(root)/open"
        mkdir(open, 0o755)
        chmod(open, 0o777)
        let target = "\(open)/libdemo.so"
        try Data("x".utf8).write(to: URL(fileURLWithPath: target))
        chmod(target, 0o644)
        let link = "\(root)/libdemo.so"
        symlink(target, link)
        #expect(PluginTrust(policy: .enforce).check(file: link)?.contains("the directory \(open) is writable") == true)
    }

    @Test func missingFileIsReported() throws {
        #expect(PluginTrust(policy: .enforce).check(file: "/nonexistent-fnhost/libdemo.so")?.contains("cannot check") == true)
    }
}
