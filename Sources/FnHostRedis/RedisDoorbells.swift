import CHiredis
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// The idle path's wait for a message that never takes one off its list.
///
/// kombu waits on an empty queue with `BRPOP`, which pops: a host that dies, or a connection
/// cut, between the pop and the `unacked` bookkeeping loses that message (kombu#305). Here each
/// list key has a doorbell: a connection of its own, blocked in `BLMOVE key key RIGHT RIGHT`,
/// which takes the consuming end and puts it straight back (the list is unchanged, atomically)
/// and returns once the list has a message. The consumer then fetches with the atomic
/// pop-and-record script, so a message is never outside both its list and `unacked`.
///
/// The consumer thread waits on every doorbell at once with one `poll`, so a message wakes it
/// directly, with no thread in between.
///
/// Threading: `wait(for:timeout:)` is called by the consumer thread alone; `interrupt` and
/// `close` from any thread. A doorbell's connection is opened on demand, one per list key ever
/// waited on.
final class RedisDoorbells: @unchecked Sendable {
    /// Seconds one `BLMOVE` blocks before it is issued again.
    static let blockSeconds = 5

    /// One list key's connection, and whether its `BLMOVE` is outstanding.
    private final class Bell {
        let key: String
        let connection: RedisConnection
        let command: [[UInt8]]
        /// A `BLMOVE` was sent and its reply not read yet.
        var blocked = false
        /// After a failure (connection lost, a wrong type), not armed again before this
        /// monotonic time.
        var quietUntil = 0.0

        init(key: String, url: RedisURL) {
            self.key = key
            // Its replies are single messages, read in 4 KB steps: one bell per list key adds up.
            self.connection = RedisConnection(url: url, readTimeout: Double(RedisDoorbells.blockSeconds) + 10, readBufferSize: 4096)
            self.command = [Array("BLMOVE".utf8), Array(key.utf8), Array(key.utf8), Array("RIGHT".utf8), Array("RIGHT".utf8),
                            Array(String(RedisDoorbells.blockSeconds).utf8)]
        }
    }

    /// How a wait ended.
    enum Outcome { case rang, timedOut, interrupted, unavailable }

    private let url: RedisURL
    /// Written by `interrupt`, polled with the doorbells.
    private let wakeFD: Int32
    /// Guards `closed`, `unsupported` and `waiting`; the bells themselves belong to the waiter.
    private let lock = ConditionLock()
    private var bells: [String: Bell] = [:]
    private var closed = false
    private var waiting = false
    /// Set when Redis does not know `BLMOVE` (before 6.2): the caller falls back to `BRPOP`.
    private var unsupported = false

    init(url: RedisURL) {
        self.url = url
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    }

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    /// Ends the wait under way, if any (it returns `.interrupted`); otherwise does nothing.
    func interrupt() {
        guard wakeFD >= 0, lock.withLock({ waiting }) else { return }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Whether this Redis has `BLMOVE` (true until a doorbell learns otherwise).
    var isSupported: Bool { lock.withLock { !unsupported } }

    /// Waits up to `timeout` seconds for a message on any of `keys`, without taking it:
    /// `.rang` when one came (the caller then fetches), `.timedOut`, `.interrupted` by
    /// `interrupt`, or `.unavailable` once closed or when Redis turned out not to support
    /// `BLMOVE`. A doorbell that cannot reach Redis is tried again after half a second; the
    /// caller's own fetch reports the broken connection.
    @discardableResult
    func wait(for keys: [String], timeout: Double) -> Outcome {
        guard lock.withLock({ () -> Bool in
            if closed || unsupported { return false }
            waiting = true
            return true
        }) else { return .unavailable }
        defer {
            let close = lock.withLock { () -> Bool in
                waiting = false
                return closed
            }
            if close { disconnectAll() }
        }
        let deadline = monotonicNow() + timeout
        var pollSet: [pollfd] = []
        var polled: [Bell] = []
        while true {
            if lock.withLock({ closed || unsupported }) { return .unavailable }
            let now = monotonicNow()
            var nextRetry = deadline
            for key in keys {
                let bell = bells[key] ?? { let b = Bell(key: key, url: url); bells[key] = b; return b }()
                guard !bell.blocked else { continue }
                if bell.quietUntil > now {
                    nextRetry = min(nextRetry, bell.quietUntil)
                    continue
                }
                do {
                    try bell.connection.send(bell.command)
                    bell.blocked = true
                } catch {
                    bell.quietUntil = now + 0.5
                    nextRetry = min(nextRetry, bell.quietUntil)
                }
            }
            // Every blocked doorbell is polled, also one of a key no longer waited on (after a
            // hot reload), so its late reply is read and it can be armed again.
            pollSet.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            pollSet.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            var buffered = false
            for bell in bells.values where bell.blocked {
                guard let state = bell.connection.pollState else {
                    bell.blocked = false
                    continue
                }
                buffered = buffered || state.buffered
                pollSet.append(pollfd(fd: state.fd, events: Int16(POLLIN), revents: 0))
                polled.append(bell)
            }
            let waitMs = buffered ? 0 : Int32(max(0, min(nextRetry, deadline) - now) * 1000 + 0.999)
            let ready = pollSet.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), waitMs) }
            if ready < 0 && errno != EINTR { return .timedOut }
            let interrupted = pollSet[0].revents != 0
            if interrupted {
                var count: UInt64 = 0
                _ = Glibc.read(wakeFD, &count, 8)
            }
            var rang = false
            for (i, bell) in polled.enumerated() where pollSet[i + 1].revents != 0 || (bell.connection.pollState?.buffered ?? false) {
                switch read(bell) {
                // A bell of a key no longer waited on (see above) only gets armed again.
                case .rang: rang = rang || keys.contains(bell.key)
                case .unsupported:
                    lock.withLock { unsupported = true }
                    return .unavailable
                case .pending: break
                }
            }
            if rang { return .rang }
            if interrupted { return .interrupted }
            if monotonicNow() >= deadline { return .timedOut }
        }
    }

    private enum Ring { case rang, pending, unsupported }

    /// Reads the reply of `bell`'s `BLMOVE`, if complete.
    private func read(_ bell: Bell) -> Ring {
        do {
            guard let reply = try bell.connection.receive() else { return .pending }
            bell.blocked = false
            switch reply {
            case .string:
                return .rang
            case .error(let e) where e.contains("unknown command"):
                return .unsupported
            case .error:
                // Not a list (WRONGTYPE), for instance: the fetch script reports what is wrong.
                bell.quietUntil = monotonicNow() + 1
                return .pending
            default:
                return .pending  // timed out: armed again by the next wait
            }
        } catch {
            bell.blocked = false
            bell.quietUntil = monotonicNow() + 0.5
            return .pending
        }
    }

    private func disconnectAll() {
        for bell in bells.values {
            bell.connection.disconnect()
            bell.blocked = false
        }
    }

    /// Stops every doorbell: at once when no wait is under way, else when it returns (within
    /// its timeout).
    func close() {
        let now = lock.withLock { () -> Bool in
            closed = true
            return !waiting
        }
        if now { disconnectAll() }
    }
}
