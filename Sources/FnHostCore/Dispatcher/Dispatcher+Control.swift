import CeleryProtocol

/// An executor that can kill the worker process running a task (`revoke(terminate=True)`) and
/// tell which process runs it (`worker_pid` in `inspect active`).
public protocol TerminatingExecutor: TaskExecutor {
    /// Sends `signal` to the worker process running `taskId`; false when none runs it. The
    /// task then ends as `workerLost`, which the dispatcher settles as REVOKED.
    func terminate(taskId: String, signal: Int32) -> Bool
    /// The pid of the worker process running `taskId`.
    func workerPid(ofTask taskId: String) -> Int32?
    /// The pids of every worker process alive.
    var workerPids: [Int32] { get }
}

/// What the dispatcher holds now, for remote control (`active`, `reserved`, `scheduled`,
/// `query_task`, `stats`) and metrics.
public struct DispatcherSnapshot: Sendable {
    /// Running requests and when each started (epoch seconds).
    public var active: [(request: TaskRequest, startedAt: Double)]
    /// Prefetched requests waiting for a slot.
    public var reserved: [TaskRequest]
    /// Requests held for their ETA, with it (epoch seconds).
    public var scheduled: [(request: TaskRequest, eta: Double)]
    /// Tasks finished since start, by name.
    public var totals: [String: Int]
    /// Revoked ids remembered.
    public var revoked: [String]
    /// Queues consumed.
    public var queues: [String]
    /// `-c`, and prefetch multiplier.
    public var concurrency: Int
    public var prefetchMultiplier: Int
}

extension Dispatcher {
    /// A consistent copy of what the dispatcher holds.
    public func snapshot() -> DispatcherSnapshot {
        lock.withLock {
            DispatcherSnapshot(
                active: runningRequests.values.sorted { $0.startedAt < $1.startedAt }.map { ($0.request, $0.startedAt) },
                reserved: functionOrder.flatMap { reserved[$0] ?? [] },
                scheduled: scheduled.values.map { ($0, $0.message.eta ?? 0) }.sorted { $0.1 < $1.1 },
                totals: totals,
                revoked: revokedOrder,
                queues: queueOrder.sorted(),
                concurrency: configuration.concurrency,
                prefetchMultiplier: configuration.prefetchMultiplier)
        }
    }

    /// Celery's `revoke`: remembers `ids` (at most `maxRevoked`, oldest forgotten first), so a
    /// delivery of one is never run; those reserved or waiting for their ETA are settled as
    /// REVOKED at once. With `terminate`, the worker process running one is sent `signal` and
    /// the task is settled as REVOKED (terminated). Returns the ids that were running and
    /// were signalled.
    @discardableResult
    public func revoke(_ ids: [String], terminate: Bool = false, signal: Int32 = 15) -> [String] {
        let wanted = Set(ids)
        var dropped: [TaskRequest] = []
        var toKill: [String] = []
        lock.withLock {
            for id in ids where !revokedIds.contains(id) {
                revokedIds.insert(id)
                revokedOrder.append(id)
            }
            if revokedOrder.count > Self.maxRevoked {
                let excess = revokedOrder.count - Self.maxRevoked
                for id in revokedOrder.prefix(excess) { revokedIds.remove(id) }
                revokedOrder.removeFirst(excess)
            }
            for (name, queue) in reserved {
                let (gone, kept) = (queue.filter { wanted.contains($0.id) }, queue.filter { !wanted.contains($0.id) })
                guard !gone.isEmpty else { continue }
                reserved[name] = kept
                held[name, default: 0] -= gone.count
                totalHeld -= gone.count
                dropped += gone
            }
            for (key, request) in scheduled where wanted.contains(request.id) {
                scheduled[key] = nil
                dropped.append(request)
            }
            if terminate {
                for entry in runningRequests.values where wanted.contains(entry.request.id) {
                    terminating[entry.request.id] = signal
                    toKill.append(entry.request.id)
                }
            }
            lock.broadcast()
        }
        for request in dropped { settleRevoked(request, expired: false) }
        var killed: [String] = []
        if let terminator = executor as? any TerminatingExecutor {
            for id in toKill {
                if terminator.terminate(taskId: id, signal: signal) { killed.append(id) } else { lock.withLock { terminating[id] = nil } }
            }
        }
        if !dropped.isEmpty { pump() }
        return killed
    }

    /// Whether `id` is revoked.
    public func isRevoked(_ id: String) -> Bool { lock.withLock { revokedIds.contains(id) } }

    /// Celery's `rate_limit`: a new limit for `task` (`"10/s"`, `"100/m"`; `nil` or `"0"`
    /// removes it). Throws a message for the reply when the task or the limit is unknown.
    public func setRateLimit(task: String, _ text: String?) throws(ControlError) {
        guard registry[task] != nil else { throw ControlError("unknown task \(task)") }
        if let text, text != "0", !text.isEmpty {
            guard let limit = RateLimit(parsing: text) else { throw ControlError("invalid rate limit string \(text)") }
            lock.withLock { buckets[task] = TokenBucket(limit: limit, now: clock()) }
        } else {
            lock.withLock { buckets[task] = nil }
        }
        pump()
    }

    /// Celery's `time_limit`: hard and soft limits (seconds, `nil`: none) for tasks of `task`
    /// received from now on.
    public func setTimeLimit(task: String, hard: Double?, soft: Double?) throws(ControlError) {
        guard registry[task] != nil else { throw ControlError("unknown task \(task)") }
        lock.withLock { timeLimitOverrides[task] = (hard, soft) }
    }

    /// `pool_grow`, `pool_shrink`, `autoscale`: the most tasks running at once from now on.
    /// Running tasks are never interrupted; prefetch follows (concurrency x multiplier).
    public func setConcurrency(_ n: Int) {
        lock.withLock {
            configuration.concurrency = max(1, n)
            lock.broadcast()
        }
        pump()
    }

    /// Celery's `add_consumer`: every function consumes `queue` too (as with `-Q`). False when
    /// it was consumed already.
    public func addConsumer(queue: String) -> Bool {
        lock.withLock {
            guard queueFunctions[queue] == nil else { return false }
            queueFunctions[queue] = .some(nil)
            queueOrder.append(queue)
            lock.broadcast()
            return true
        }
    }

    /// Celery's `cancel_consumer`: stops fetching from `queue`. False when it was not consumed.
    public func cancelConsumer(queue: String) -> Bool {
        lock.withLock {
            guard queueFunctions[queue] != nil else { return false }
            queueFunctions[queue] = nil
            queueOrder.removeAll { $0 == queue }
            return true
        }
    }
}

/// A remote-control request the dispatcher refuses, with the reason for the reply.
public struct ControlError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
