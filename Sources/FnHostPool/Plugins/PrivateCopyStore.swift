import FnHostCore
import FnHostPlugins

#if canImport(Glibc)
import Glibc
#endif

/// The directory of private copies (`<state directory>/plugins`) as one process uses it, with
/// the copies nobody uses removed.
///
/// Copies are content-addressed and shared by every fnhost of the same state directory, so a
/// host that reloads a new build every deploy would otherwise keep every build it ever copied.
/// Each copy a process makes is *claimed*: a shared `flock` on it, held while a generation of
/// its plugin may still start worker processes from it (`keepClaims`), and released at the
/// latest when the process exits, however it exits. `collect` removes the copies that no process
/// claims. Copying-and-claiming and collecting exclude each other through a lock on the
/// directory itself (`.lock`), so a copy is never removed between being written (or found) and
/// being claimed.
///
/// A worker process that has loaded a copy keeps it mapped if it is removed; but every copy a
/// host may start a process from is claimed, so none is removed under it.
///
/// Threading: any thread; one lock, held across the file operations of one call.
public final class PrivateCopyStore: @unchecked Sendable {
    public let directory: String
    private let lock = ConditionLock()
    /// Copy path -> the descriptor holding its shared lock.
    private var claims: [String: Int32] = [:]
    /// Resolved manifest copy -> the library copy it names: claimed as long as the manifest is.
    private var libraries: [String: String] = [:]

    public init(directory: String) { self.directory = directory }

    deinit { for fd in claims.values { close(fd) } }

    /// Reads `source` once, writes it as `<directory>/<sha256>-<file name>` unless that exists
    /// (the directory created with mode 0700), and claims the copy; returns its path.
    public func make(of source: String) throws(PrivateCopy.Error) -> String {
        let bytes = try PrivateCopy.read(source)
        return try store(bytes, name: source.split(separator: "/").last.map(String.init) ?? "plugin.so")
    }

    /// Writes `bytes` as `<directory>/<sha256>-<name>` (write, then rename) unless that exists,
    /// and claims it; returns its path: the same content always gets the same path. A resolved
    /// manifest passes the library copy it names as `library`: that copy stays claimed with it.
    public func store(_ bytes: [UInt8], name: String, library: String? = nil) throws(PrivateCopy.Error) -> String {
        try lock.withLock { Result { () throws(PrivateCopy.Error) -> String in try storeLocked(bytes, name: name, library: library) } }.get()
    }

    /// `store` with the lock held.
    private func storeLocked(_ bytes: [UInt8], name: String, library: String?) throws(PrivateCopy.Error) -> String {
        try PrivateCopy.makeDirectory(directory)
        let directoryLock = try lockDirectory(LOCK_SH)
        defer { close(directoryLock) }
        let path = try PrivateCopy.store(bytes, name: name, in: directory)
        if claims[path] == nil {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw PrivateCopy.Error(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
            // Never waits: a collector takes its exclusive locks only under the directory's.
            flock(fd, LOCK_SH)
            claims[path] = fd
        }
        if let library { libraries[path] = library }
        return path
    }

    /// The copies this process claims.
    public var claimed: Set<String> { lock.withLock { Set(claims.keys) } }

    /// Releases the claims on every copy but `paths` (and the library copies their manifests
    /// name), so that `collect`, here or in another process, may remove them.
    public func keepClaims(only paths: Set<String>) {
        lock.withLock {
            var keep = paths
            for path in paths { if let library = libraries[path] { keep.insert(library) } }
            for (path, fd) in claims where !keep.contains(path) {
                close(fd)
                claims[path] = nil
                libraries[path] = nil
            }
        }
    }

    /// Removes every copy that no process claims, and temporary files older than an hour (a
    /// copy whose writer died); returns the file names removed.
    @discardableResult
    public func collect() -> [String] {
        lock.withLock {
            guard let directoryLock = try? lockDirectory(LOCK_EX) else { return [] }
            defer { close(directoryLock) }
            var removed: [String] = []
            for name in directoryNames(directory) {
                let path = directory + "/" + name
                guard !name.hasPrefix("."), claims[path] == nil else { continue }
                var st = stat()
                guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                if name.contains(".tmp.") {
                    if Double(st.st_mtim.tv_sec) < Double(time(nil)) - 3600, unlink(path) == 0 { removed.append(name) }
                    continue
                }
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                if flock(fd, LOCK_EX | LOCK_NB) == 0, unlink(path) == 0 { removed.append(name) }
                close(fd)
            }
            return removed.sorted()
        }
    }

    /// A descriptor holding `.lock` of the directory in `mode` (`LOCK_SH` or `LOCK_EX`).
    private func lockDirectory(_ mode: Int32) throws(PrivateCopy.Error) -> Int32 {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PrivateCopy.Error(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, mode) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw PrivateCopy.Error(description: "cannot lock \(path): \(reason)")
            }
        }
        return fd
    }
}
