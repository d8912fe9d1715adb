#if canImport(Glibc)
import Glibc
#endif

/// When idle worker processes are shut down, so that a function's pool shrinks to zero
/// (`--idle-timeout`), keeping a floor of processes alive (`--autoscale MAX,MIN`), as a pure
/// value: the executor feeds it the idle processes and the clock, and performs what it returns.
///
/// A process idle for longer than `idleTimeout` seconds is reaped, the longest idle first,
/// unless that would leave fewer than `minProcesses` processes alive in all (busy ones count).
public struct IdlePolicy: Sendable, Equatable {
    /// An idle process as the policy sees it.
    public struct IdleProcess: Sendable, Equatable {
        public var pid: pid_t
        /// When it last finished a task or was started (monotonic seconds).
        public var idleSince: Double

        public init(pid: pid_t, idleSince: Double) {
            self.pid = pid
            self.idleSince = idleSince
        }
    }

    /// What to do now, and when to look again.
    public struct Review: Sendable, Equatable {
        /// Processes to shut down now.
        public var reap: [pid_t]
        /// When the next idle process expires (monotonic seconds); `nil`: nothing to wait for
        /// until the processes change.
        public var nextReview: Double?

        public init(reap: [pid_t], nextReview: Double?) {
            self.reap = reap
            self.nextReview = nextReview
        }
    }

    /// Seconds a process may stay idle; `nil`: forever.
    public var idleTimeout: Double?
    /// Processes the idle timeout never takes the executor below.
    public var minProcesses: Int

    /// An `idleTimeout` of 0 or less (or not a number) disables reaping.
    public init(idleTimeout: Double?, minProcesses: Int = 0) {
        self.idleTimeout = idleTimeout.flatMap { $0 > 0 ? $0 : nil }
        self.minProcesses = max(0, minProcesses)
    }

    /// Idle processes live forever.
    public static let never = IdlePolicy(idleTimeout: nil)

    /// Which of the `idle` processes to reap at `now`, with `alive` processes in all (idle,
    /// busy and not yet exited), and when to review again.
    public func review(idle: [IdleProcess], alive: Int, now: Double) -> Review {
        guard let timeout = idleTimeout else { return Review(reap: [], nextReview: nil) }
        var reap: [pid_t] = []
        var next: Double?
        var remaining = alive
        for process in idle.sorted(by: { $0.idleSince < $1.idleSince }) {
            let expiry = process.idleSince + timeout
            if expiry <= now {
                if remaining > minProcesses {
                    reap.append(process.pid)
                    remaining -= 1
                }
            } else {
                next = min(next ?? expiry, expiry)
            }
        }
        return Review(reap: reap, nextReview: next)
    }
}
