import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// Watches the functions directory with inotify and calls `changed` with the file name of every
/// plugin or manifest created, written (`cp` in place: each close after writing), moved in or
/// out (`mv`, an editor's write-then-rename), deleted, or whose mode or owner changed (trust);
/// also (with an empty name) when the directory itself changes mode, is moved or is removed:
/// then the watch is set again on the path as soon as a directory is there again (a deployment
/// that swaps in a new directory). Debouncing is the caller's (`ReloadStateMachine`).
///
/// Threading: one thread of its own, polling every 0.25 s for `stop`.
public final class DirectoryWatcher: @unchecked Sendable {
    private let fd: Int32
    private let directory: String
    private static let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
    /// The watch descriptor of the directory (-1: not watched now).
    private var watch: Int32 = -1
    private let lock = ConditionLock()
    private var stopped = false
    private var thread: JoinableThread?

    /// Why the directory cannot be watched.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts watching; `changed` is called on the watcher's thread.
    public init(directory: String, changed: @escaping @Sendable (String) -> Void) throws(Error) {
        self.directory = directory
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw Error(description: "inotify_init1 failed: \(String(cString: strerror(errno)))") }
        watch = inotify_add_watch(fd, directory, Self.mask)
        guard watch >= 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Error(description: "cannot watch \(directory): \(reason)")
        }
        thread = startThread(name: "fnhost-watch") { [self] in run(changed) }
    }

    /// Stops watching; returns once the thread has ended.
    public func stop() {
        // Once only: a second stop must not close a descriptor number that may belong to
        // something else by then.
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        thread?.join()
        close(fd)
    }

    private func run(_ changed: @escaping @Sendable (String) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !lock.withLock({ stopped }) {
            if watch < 0 {
                // The directory was moved or removed: watch whatever is at the path again.
                watch = inotify_add_watch(fd, directory, Self.mask)
                if watch >= 0 { changed("") }
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 250)
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { continue }
            for event in Self.events(in: buffer[0..<n]) {
                if event.mask & UInt32(IN_MOVE_SELF | IN_DELETE_SELF) != 0 {
                    inotify_rm_watch(fd, event.watch)
                    watch = -1
                }
                if event.mask & UInt32(IN_IGNORED) != 0 && event.watch == watch { watch = -1 }
                if event.name.isEmpty || PluginLoader.isPluginFile(event.name) { changed(event.name) }
            }
        }
    }

    /// The `inotify_event`s in `bytes`: watch, mask, file name (empty for the directory itself).
    static func events(in bytes: ArraySlice<UInt8>) -> [(watch: Int32, mask: UInt32, name: String)] {
        func word(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        var events: [(watch: Int32, mask: UInt32, name: String)] = []
        var offset = bytes.startIndex
        // struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[len]; }
        while offset + 16 <= bytes.endIndex {
            let len = Int(word(offset + 12))
            let start = offset + 16
            let end = min(start + len, bytes.endIndex)
            events.append((Int32(bitPattern: word(offset)), word(offset + 4), String(decoding: bytes[start..<end].prefix(while: { $0 != 0 }), as: UTF8.self)))
            offset = end
        }
        return events
    }
}
