import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// The idle path's wait for a message that never takes one off its list.
///
/// kombu waits on an empty queue with `BRPOP`, which pops: a host that dies, or a connection
/// cut, between the pop and the `unacked` bookkeeping loses that message (kombu#305). Here each
/// list key has a doorbell: a thread of its own, with a connection of its own, blocked in
/// `BLMOVE key key RIGHT RIGHT`, which takes the consuming end and puts it straight back (the
/// list is unchanged, atomically) and returns once the list has a message. The consumer then
/// fetches with the atomic pop-and-record script, so a message is never outside both its list
/// and `unacked`.
///
/// Threading: `wait(for:timeout:)` is called by the consumer thread alone; `close` from any
/// thread. Doorbell threads are started on demand, one per list key ever waited on, and end
/// within one block (`blockSeconds`) of `close`.
final class RedisDoorbells: @unchecked Sendable {
    /// Seconds one `BLMOVE` blocks before it is issued again.
    static let blockSeconds = 5

    private let url: RedisURL
    private let lock = ConditionLock()
    private var started: Set<String> = []
    private var armed: Set<String> = []
    /// Bumped by every wait, so a doorbell rings once per wait.
    private var generation = 0
    private var rang = false
    private var closed = false
    /// Set when Redis does not know `BLMOVE` (before 6.2): the caller falls back to `BRPOP`.
    private var unsupported = false

    init(url: RedisURL) {
        self.url = url
    }

    /// Whether this Redis has `BLMOVE` (true until a doorbell learns otherwise).
    var isSupported: Bool { lock.withLock { !unsupported } }

    /// Waits up to `timeout` seconds for a message on any of `keys`, without taking it.
    /// Returns true when one rang (the caller then fetches); false on timeout, close, or when
    /// Redis turned out not to support `BLMOVE`.
    @discardableResult
    func wait(for keys: [String], timeout: Double) -> Bool {
        lock.withLock {
            generation += 1
            rang = false
            armed = Set(keys)
            for key in keys where !started.contains(key) {
                started.insert(key)
                startThread(name: "fnhost-doorbell") { [self] in ring(key) }
            }
            lock.broadcast()
            let deadline = monotonicNow() + timeout
            while !rang, !closed, !unsupported {
                if !lock.wait(until: deadline) { break }
            }
            armed = []
            return rang
        }
    }

    /// Stops every doorbell (each within one block).
    func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }

    /// One doorbell's loop: block on `key` while it is armed; ring once per wait when a message is there.
    private func ring(_ key: String) {
        let connection = RedisConnection(url: url, readTimeout: Double(Self.blockSeconds) + 10)
        defer { connection.disconnect() }
        let command = [Array("BLMOVE".utf8), Array(key.utf8), Array(key.utf8), Array("RIGHT".utf8), Array("RIGHT".utf8),
                       Array(String(Self.blockSeconds).utf8)]
        var rangFor = -1
        while true {
            let go = lock.withLock {
                while !closed, !unsupported, !(armed.contains(key) && generation != rangFor) { lock.wait() }
                return !closed && !unsupported
            }
            if !go { return }
            do {
                switch try connection.command(command) {
                case .string:
                    lock.withLock {
                        if armed.contains(key) {
                            rangFor = generation
                            rang = true
                            lock.broadcast()
                        }
                    }
                case .error(let e) where e.contains("unknown command"):
                    lock.withLock {
                        unsupported = true
                        lock.broadcast()
                    }
                    return
                case .error:
                    // Not a list (WRONGTYPE), for instance: the fetch script reports what is wrong.
                    sleepSeconds(1)
                default:
                    break  // timed out: block again while armed
                }
            } catch {
                connection.disconnect()
                sleepSeconds(0.5)  // the consumer's own fetch reports a broken connection
            }
        }
    }
}
