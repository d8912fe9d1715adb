#if canImport(Glibc)
import Glibc
#endif

/// Who may change a plugin decides who runs code in fnhost's worker processes, so a plugin (or
/// a manifest, or a library a manifest names by path) is loaded only when nobody but fnhost's
/// own user (or root) can change it:
///
/// - the file is owned by the user running fnhost, or by root;
/// - the file is not writable by its group or by others;
/// - the directory holding it obeys the same two rules (anyone who can write to the directory
///   can replace the file).
///
/// `evaluate` is the rule as a pure function; `check` reads the file system (following symbolic
/// links, and checking the directory of the link as well as that of its target). With
/// `--allow-untrusted-plugins` (`Policy.allowUntrusted`) nothing is checked.
public struct PluginTrust: Sendable {
    /// Whether the rule is enforced.
    public enum Policy: Sendable, Equatable {
        /// Refuse untrusted files (the default).
        case enforce
        /// Load everything (`--allow-untrusted-plugins`, for development only).
        case allowUntrusted
    }

    /// What the rule looks at of one path.
    public struct Status: Sendable, Equatable {
        public var owner: UInt32
        /// Permission bits (`st_mode & 0o7777`).
        public var mode: UInt32
        public var isDirectory: Bool

        public init(owner: UInt32, mode: UInt32, isDirectory: Bool) {
            self.owner = owner
            self.mode = mode
            self.isDirectory = isDirectory
        }
    }

    public let policy: Policy
    /// The user fnhost runs as (its effective uid).
    public let user: UInt32

    public init(policy: Policy, user: UInt32 = UInt32(geteuid())) {
        self.policy = policy
        self.user = user
    }

    /// Why `path` (with `status`) is not trusted, or `nil` when it is.
    public func evaluate(path: String, status: Status) -> String? {
        guard policy == .enforce else { return nil }
        let what = status.isDirectory ? "directory" : "file"
        var writers: [String] = []
        if status.mode & 0o020 != 0 { writers.append("its group") }
        if status.mode & 0o002 != 0 { writers.append("other users") }
        if !writers.isEmpty {
            return "untrusted: the \(what) \(path) is writable by \(writers.joined(separator: " and ")) (mode \(Self.octal(status.mode))); "
                + "run `chmod go-w \(path)`, or start fnhost with --allow-untrusted-plugins (development only)"
        }
        if status.owner != user && status.owner != 0 {
            return "untrusted: the \(what) \(path) is owned by \(Self.userName(status.owner)), not by the user running fnhost "
                + "(\(Self.userName(user))) or root; chown it, or start fnhost with --allow-untrusted-plugins (development only)"
        }
        return nil
    }

    /// Why the file at `path` cannot be trusted (itself, or the directory holding it, or, for a
    /// symbolic link, its target and the target's directory), or `nil` when it can.
    public func check(file path: String) -> String? {
        guard policy == .enforce else { return nil }
        var paths = [path, Self.directory(of: path)]
        if let real = Self.realPath(path), real != path {
            paths += [real, Self.directory(of: real)]
        }
        var seen = Set<String>()
        for p in paths where seen.insert(p).inserted {
            var st = stat()
            guard stat(p, &st) == 0 else { return "cannot check \(p): \(String(cString: strerror(errno)))" }
            let status = Status(owner: st.st_uid, mode: st.st_mode & 0o7777, isDirectory: (st.st_mode & S_IFMT) == S_IFDIR)
            if let problem = evaluate(path: p, status: status) { return problem }
        }
        return nil
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func userName(_ uid: UInt32) -> String {
        if let pw = getpwuid(uid_t(uid)), let name = pw.pointee.pw_name { return "\(String(cString: name)) (uid \(uid))" }
        return "uid \(uid)"
    }
}
