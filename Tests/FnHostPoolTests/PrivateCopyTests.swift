import FnHostPlugins
import FnHostPool
import Foundation
import Testing

@Suite struct PrivateCopyTests {
    func temporaryDirectory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/fnhost-private-copy-XXXXXX".utf8CString)
        let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        return path
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func read(_ path: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
    }

    @Test func copiesAreContentAddressed() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let source = "\(root)/libdemo.so"
        let cache = "\(root)/cache/nested"

        try write("version one", to: source)
        let store = PrivateCopyStore(directory: cache)
        let first = try store.make(of: source)
        #expect(first == "\(cache)/\(PrivateCopy.sha256Hex(Array("version one".utf8)))-libdemo.so")
        #expect(try read(first) == "version one")
        // Same content: same path, and the existing copy is not rewritten (same inode).
        let inode = try #require(try FileManager.default.attributesOfItem(atPath: first)[.systemFileNumber] as? NSNumber)
        #expect(try store.make(of: source) == first)
        #expect(try FileManager.default.attributesOfItem(atPath: first)[.systemFileNumber] as? NSNumber == inode)

        // Changed content: a new path; the first copy is untouched.
        try write("version two", to: source)
        let second = try store.make(of: source)
        #expect(second != first)
        #expect(try read(second) == "version two")
        #expect(try read(first) == "version one")

        // The original may go away; the copies stay.
        try FileManager.default.removeItem(atPath: source)
        #expect(try read(second) == "version two")
        #expect(throws: PrivateCopy.Error.self) { try store.make(of: source) }
    }

    @Test func cacheDirectoryIsPrivate() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write("x", to: "\(root)/libx.so")
        _ = try PrivateCopyStore(directory: "\(root)/cache").make(of: "\(root)/libx.so")
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(root)/cache")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }

    @Test func sha256OfKnownInputs() {
        #expect(PrivateCopy.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(PrivateCopy.sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
