import CFnHostSupport
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// A task's `memory_limit` in its worker process: while the task runs, the process's address
/// space (`RLIMIT_AS`, soft limit) may grow by at most that many bytes over what it was when the
/// task started; past it `malloc` returns NULL and `mmap` fails, so the plugin sees the failure
/// (and the host reports `MemoryError` if the process dies of it). The previous soft limit is
/// restored when the task ends. With several limited tasks at once (the threads pool) the
/// smallest applies to the whole process. Thread-safe.
final class TaskMemoryLimit: @unchecked Sendable {
    private let lock = ConditionLock()
    private var active: [Int] = []
    private var baseline = 0
    private let originalSoft: UInt
    private let hard: UInt

    init() {
        var soft: UInt = 0
        var hard: UInt = 0
        if fnhost_get_rlimit(fnhost_rlimit_as, &soft, &hard) != 0 { (soft, hard) = (fnhost_rlim_infinity, fnhost_rlim_infinity) }
        originalSoft = soft
        self.hard = hard
    }

    /// A task with `bytes` of limit (nil: none) starts.
    func enter(_ bytes: Int?) {
        guard let bytes else { return }
        lock.withLock {
            if active.isEmpty { baseline = Self.addressSpace() }
            active.append(bytes)
            apply()
        }
    }

    /// The task that entered with `bytes` ended.
    func leave(_ bytes: Int?) {
        guard let bytes else { return }
        lock.withLock {
            if let i = active.firstIndex(of: bytes) { active.remove(at: i) }
            apply()
        }
    }

    private func apply() {
        var soft = originalSoft
        if let smallest = active.min() { soft = min(UInt(baseline) &+ UInt(smallest), hard) }
        _ = fnhost_set_rlimit(fnhost_rlimit_as, soft, hard)
    }

    /// The process's current address space in bytes (`/proc/self/statm`'s first field).
    static func addressSpace() -> Int {
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var pages = 0
        guard fscanf_pages(f, &pages) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func fscanf_pages(_ f: UnsafeMutablePointer<FILE>, _ pages: inout Int) -> Bool {
        var buffer = [CChar](repeating: 0, count: 128)
        guard fgets(&buffer, Int32(buffer.count), f) != nil else { return false }
        let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let first = text.split(separator: " ").first, let n = Int(first) else { return false }
        pages = n
        return true
    }
}
