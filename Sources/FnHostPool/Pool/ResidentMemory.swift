#if canImport(Glibc)
import Glibc
#endif

/// The resident memory of a process, read by the host from `/proc/<pid>/statm` (for
/// `--max-memory-per-child`; the worker is not asked, so a wedged plugin cannot lie or stall).
public enum ResidentMemory {
    /// Kilobytes of resident memory of `pid`; `nil` when the process is gone or unreadable.
    public static func kilobytes(of pid: pid_t) -> Int? {
        let fd = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return kilobytes(statm: buffer[0..<n], pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Kilobytes of resident memory from the text of a `statm` file (its second field, in
    /// pages); `nil` when it is not one.
    public static func kilobytes(statm: some Collection<UInt8>, pageSize: Int) -> Int? {
        let fields = statm.split(whereSeparator: { $0 == 0x20 || $0 == 0x0A })
        guard fields.count >= 2, pageSize > 0, let pages = Int(String(decoding: fields[1], as: UTF8.self)), pages >= 0 else {
            return nil
        }
        return pages * pageSize / 1024
    }
}
