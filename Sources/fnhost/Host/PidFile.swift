import FnHostPlugins

#if canImport(Glibc)
import Glibc
#endif

/// Where `fnhost serve` records its pid for the functions directory it serves, so that
/// `fnhost reload` finds it: `<state dir>/serve-<hash of the directory's real path>.pid`
/// (several hosts on one machine serve different directories). Written 0600 at start, removed
/// at exit; a stale file (its process gone, or not an `fnhost serve`) is ignored.
struct PidFile {
    let path: String

    init(stateDirectory: String, functionsDirectory: String) {
        var canonical = functionsDirectory
        if let resolved = realpath(functionsDirectory, nil) {
            canonical = String(cString: resolved)
            free(resolved)
        }
        path = "\(stateDirectory)/serve-\(PrivateCopy.sha256Hex(Array(canonical.utf8)).prefix(16)).pid"
    }

    /// Records this process (write, then rename).
    func write() throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/").dropLast() {
            partial += "/" + part
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw FnHostError("cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
        let temp = "\(path).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FnHostError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        let text = Array("\(getpid())\n".utf8)
        let ok = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.count
        close(fd)
        guard ok, rename(temp, path) == 0 else {
            unlink(temp)
            throw FnHostError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the file (and the status file) if it still names this process.
    func remove() {
        if read() == getpid() {
            unlink(path)
            unlink(statusPath)
        }
    }

    /// Where the host writes what it serves after each reload, for `fnhost list`.
    var statusPath: String { String(path.dropLast(4)) + ".status" }

    /// Writes the status lines (write, then rename).
    func writeStatus(_ lines: [String]) {
        let temp = "\(statusPath).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let text = Array(lines.map { $0 + "\n" }.joined().utf8)
        let ok = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.count
        close(fd)
        if !ok || rename(temp, statusPath) != 0 { unlink(temp) }
    }

    /// The status lines of the running host, if there is one.
    func readStatus() -> (pid: pid_t, lines: [String])? {
        guard case .success(let pid) = runningHost(), let text = ConfigFile.readText(statusPath) else { return nil }
        return (pid, text.split(separator: "\n").map(String.init))
    }

    /// The pid recorded, if the file exists and holds one.
    func read() -> pid_t? {
        guard let text = ConfigFile.readText(path) else { return nil }
        return pid_t(text.split(separator: "\n").first.map(String.init) ?? "")
    }

    /// The pid of the `fnhost serve` running for the directory, or why there is none.
    func runningHost() -> Result<pid_t, FnHostError> {
        guard let pid = read() else {
            return .failure(FnHostError("no fnhost serve is running for this functions directory (no pid file at \(path); is --state-dir the same as the host's?)"))
        }
        guard kill(pid, 0) == 0 || errno == EPERM else {
            return .failure(FnHostError("no fnhost serve is running for this functions directory (pid \(pid) in \(path) has exited)"))
        }
        let cmdline = ConfigFile.readText("/proc/\(pid)/cmdline") ?? ""
        guard cmdline.split(separator: "\0").contains("serve") else {
            return .failure(FnHostError("pid \(pid) in \(path) is not an fnhost serve (stale pid file)"))
        }
        return .success(pid)
    }
}
