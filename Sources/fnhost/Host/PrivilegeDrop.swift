#if canImport(Glibc)
import Glibc
#endif

/// `fnhost serve --user NAME`: a host started as root becomes NAME (its uid, its primary group
/// and its supplementary groups) for good, before it opens a broker connection or starts a
/// worker process, so no plugin ever runs as root. Only `fnhost.yml` is read before (it may
/// be readable by root alone, for its secrets).
///
/// Guarantees: after `drop(to:)` returns, the real, effective and saved ids are NAME's and
/// root cannot be regained (checked); on any failure it throws and the host does not start.
enum PrivilegeDrop {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func drop(to name: String) throws(Failure) {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else {
            throw Failure(description: "--user \(name): no such user")
        }
        let uid = entry.pw_uid
        let gid = entry.pw_gid
        let home = entry.pw_dir.map { String(cString: $0) }
        if getuid() == uid && geteuid() == uid { return }
        guard geteuid() == 0 else { throw Failure(description: "--user \(name): fnhost must be started as root to change its user") }
        guard initgroups(name, gid) == 0 else { throw Failure(description: "--user \(name): initgroups failed: \(String(cString: strerror(errno)))") }
        guard setgid(gid) == 0 else { throw Failure(description: "--user \(name): setgid(\(gid)) failed: \(String(cString: strerror(errno)))") }
        guard setuid(uid) == 0 else { throw Failure(description: "--user \(name): setuid(\(uid)) failed: \(String(cString: strerror(errno)))") }
        if uid != 0 {
            guard setuid(0) != 0, getuid() == uid, geteuid() == uid, getgid() == gid, getegid() == gid else {
                throw Failure(description: "--user \(name): root privileges could be regained after dropping them; refusing to start")
            }
        }
        // Root's runtime directory and home are not the new user's: the state directory then
        // defaults to /tmp/fnhost-<uid>.
        unsetenv("XDG_RUNTIME_DIR")
        setenv("USER", name, 1)
        setenv("LOGNAME", name, 1)
        if let home { setenv("HOME", home, 1) }
    }
}
