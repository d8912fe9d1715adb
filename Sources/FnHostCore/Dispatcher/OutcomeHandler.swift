import CeleryProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Performs settlements on the broker and the result backend, in batches: on a thread of its
/// own, or (`submitAndSettle`, when nothing else is pending or under way) on the submitting
/// thread, which saves a thread wake-up on the path of an idle host's round trip.
///
/// Guarantees: one batch is carried out at a time, and settlements in the order submitted;
/// within a batch chord sizes are set before anything is published, every publish happens
/// before any result is stored, chord parts are counted (and a completed chord's body applied,
/// once) after results are stored, errbacks are published after that, and all of it before any
/// delivery is acknowledged or given back. A batch that fails (broker or backend down) is
/// retried with capped backoff until it succeeds or the handler is stopped: nothing is dropped,
/// and a delivery is never acknowledged before its result is written.
public final class OutcomeHandler: @unchecked Sendable {
    private let broker: any Broker
    private let backend: (any ResultBackend)?
    private let canvas: Canvas?
    /// Message signing: every task message the handler publishes (retries, chain steps,
    /// callbacks, errbacks, chord bodies) is signed with the host's key first.
    private let signing: (any MessageSigning)?
    private let logger: Logger
    private let lock = ConditionLock()
    private var pending: [Settlement] = []
    /// Whether a batch is being carried out (by the thread, or inline by a submitter).
    private var performing = false
    /// The batch being carried out (read only by `settlingTags`).
    private var current: [Settlement] = []
    /// A batch that failed inline, with how far it got: the thread retries it before anything else.
    private var handedOver: (batch: [Settlement], progress: Progress)?
    private var stopping = false
    /// Threads waiting in `flush`.
    private var flushing = 0
    private var thread: JoinableThread?
    /// The most settlements carried out in one round trip.
    public let batchSize: Int

    /// `canvas` applies chord bodies when a batch completes a chord (needed only with canvas).
    /// `signing` signs every task message published (see `MessageSigning`).
    public init(broker: any Broker, backend: (any ResultBackend)?, logger: Logger, batchSize: Int = 256, canvas: Canvas? = nil,
                signing: (any MessageSigning)? = nil) {
        self.broker = broker
        self.signing = signing
        self.backend = backend
        self.canvas = canvas
        self.logger = logger
        self.batchSize = batchSize
    }

    /// Starts the handler's thread.
    public func start() {
        let t = startThread(name: "fnhost-outcomes") { [self] in run() }
        lock.withLock { thread = t }
    }

    /// Queues a settlement.
    public func submit(_ settlement: Settlement) {
        lock.withLock {
            pending.append(settlement)
            lock.broadcast()
        }
    }

    /// Queues a settlement, or carries it out on the calling thread at once when the handler's
    /// thread runs and nothing else is pending or under way (then it returns after the round
    /// trips). A batch that fails inline is handed to the thread, which retries it first, with
    /// how far it got: nothing is dropped or done twice.
    public func submitAndSettle(_ settlement: Settlement) {
        let batch = [settlement]
        let inline: Bool = lock.withLock {
            guard thread != nil, !stopping, !performing, pending.isEmpty, handedOver == nil else {
                pending.append(settlement)
                lock.broadcast()
                return false
            }
            performing = true
            current = batch
            return true
        }
        guard inline else { return }
        var progress = Progress()
        do {
            try perform(batch, progress: &progress)
            lock.withLock {
                performing = false
                current = []
                // Wake the thread only when it has work (a wake-up it would sleep through again
                // costs as much as the hop this path saves).
                if !pending.isEmpty || flushing > 0 || stopping { lock.broadcast() }
            }
        } catch {
            logger.error("settling 1 outcome failed, the outcome thread retries it: \(error)")
            lock.withLock {
                handedOver = (batch, progress)
                performing = false
                current = []
                lock.broadcast()
            }
        }
    }

    /// Delivery tags whose settlement is submitted and not yet carried out: pending, being
    /// carried out, or handed over for a retry. Their deliveries are still this host's.
    public func settlingTags() -> Set<String> {
        lock.withLock {
            var tags = Set<String>()
            for settlement in pending { if let tag = settlement.delivery?.tag { tags.insert(tag) } }
            for settlement in current { if let tag = settlement.delivery?.tag { tags.insert(tag) } }
            for settlement in handedOver?.batch ?? [] { if let tag = settlement.delivery?.tag { tags.insert(tag) } }
            return tags
        }
    }

    /// Waits until everything submitted so far is carried out, up to `timeout` seconds.
    /// Returns false on timeout.
    @discardableResult
    public func flush(timeout: Double) -> Bool {
        let deadline = monotonicNow() + timeout
        return lock.withLock {
            flushing += 1
            defer { flushing -= 1 }
            while !pending.isEmpty || performing || handedOver != nil {
                if !lock.wait(until: deadline) { return false }
            }
            return true
        }
    }

    /// Stops the thread after the current batch; what is still pending is reported and left.
    public func stop() {
        let t = lock.withLock { () -> JoinableThread? in
            stopping = true
            lock.broadcast()
            return thread
        }
        t?.join()
        let left = lock.withLock { pending.count + (handedOver?.batch.count ?? 0) }
        if left > 0 { logger.warning("outcome handler stopped with \(left) settlements not carried out; their deliveries stay unacknowledged and will be redelivered") }
    }

    private func run() {
        while true {
            // One batch at a time: wait while one is under way inline, even when stopping.
            let work: (batch: [Settlement], progress: Progress)? = lock.withLock {
                while performing || (pending.isEmpty && handedOver == nil && !stopping) { lock.wait() }
                if let retry = handedOver {
                    handedOver = nil
                    performing = true
                    current = retry.batch
                    return retry
                }
                if pending.isEmpty { return nil }  // stopping, and nothing left
                let n = min(batchSize, pending.count)
                let batch = Array(pending.prefix(n))
                pending.removeFirst(n)
                performing = true
                current = batch
                return (batch, Progress())
            }
            guard let (batch, started) = work else { return }
            var delay = 0.05
            var progress = started
            while true {
                do {
                    try perform(batch, progress: &progress)
                    break
                } catch {
                    logger.error("settling \(batch.count) outcomes failed, retrying in \(delay)s: \(error)")
                    if lock.withLock({ stopping }) {
                        lock.withLock { pending.insert(contentsOf: batch, at: 0); performing = false; current = []; lock.broadcast() }
                        return
                    }
                    sleepSeconds(delay)
                    delay = min(delay * 2, 5)
                }
            }
            lock.withLock {
                performing = false
                current = []
                lock.broadcast()
            }
        }
    }

    /// Publishes a task message, signed first when signing is on.
    private func publish(_ message: TaskMessage, toQueue queue: String) throws {
        guard let signing else { return try broker.publish(message, toQueue: queue) }
        try broker.publish(try signing.sealed(message), toQueue: queue)
    }

    /// How far a batch got, so a retried batch never publishes a follow-up message twice.
    private struct Progress {
        var sizesSet = false
        var published = 0
        var stored = false
        var chords = ChordProgress()
        var publishedAfterStore = 0
        var acked = false
    }

    private func perform(_ batch: [Settlement], progress: inout Progress) throws {
        let sizes = batch.flatMap(\.chordSizes)
        if !progress.sizesSet, !sizes.isEmpty {
            guard let chords = backend as? any ChordBackend else { throw CanvasSettlementError("the result backend cannot run chords") }
            try chords.setChordSizes(sizes)
        }
        progress.sizesSet = true
        let messages = batch.flatMap(\.publish)
        while progress.published < messages.count {
            let (queue, message) = messages[progress.published]
            try publish(message, toQueue: queue)
            progress.published += 1
        }
        let results = batch.flatMap(\.results)
        if !progress.stored, !results.isEmpty, let backend { try backend.store(results) }
        progress.stored = true
        try countChordParts(batch.flatMap(\.chordParts), progress: &progress.chords)
        let after = batch.flatMap(\.publishAfterStore)
        while progress.publishedAfterStore < after.count {
            let (queue, message) = after[progress.publishedAfterStore]
            try publish(message, toQueue: queue)
            progress.publishedAfterStore += 1
        }
        let acks = batch.compactMap { $0.disposition == .ack ? $0.delivery : nil }
        if !progress.acked, !acks.isEmpty { try broker.ack(acks) }
        progress.acked = true
        let requeues = batch.compactMap { $0.disposition == .requeue ? $0.delivery : nil }
        if !requeues.isEmpty { try broker.requeue(requeues) }
        let delays = batch.compactMap { settlement -> (delivery: Delivery, until: Double)? in
            guard case .delay(let until) = settlement.disposition, let delivery = settlement.delivery else { return nil }
            return (delivery, until)
        }
        if !delays.isEmpty { try broker.delay(delays) }
        let dead = batch.compactMap { settlement -> (delivery: Delivery, reason: String)? in
            guard case .deadLetter(let reason) = settlement.disposition, let delivery = settlement.delivery else { return nil }
            return (delivery, reason)
        }
        if !dead.isEmpty { try broker.deadLetter(dead) }
    }
}

struct CanvasSettlementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension OutcomeHandler {
    /// How far the chord step of a batch got: a retried batch re-counts a part with the same
    /// claim token (the backend ignores the duplicate and recognizes its own claim) and never
    /// publishes a body twice.
    struct ChordProgress {
        var done = 0
        var token: String?
        var joined: Continuation?
        var claimExtended = false
        var sizesSet = false
        var published = 0
        var stored = false
        var publishedAfterStore = 0
    }

    /// Counts each chord part on the backend; where one completes its chord and this host wins
    /// the claim, applies the body (or fails it with ChordError), then releases the chord.
    func countChordParts(_ parts: [ChordPart], progress: inout ChordProgress) throws {
        guard !parts.isEmpty else { return }
        guard let chords = backend as? any ChordBackend, let canvas else {
            throw CanvasSettlementError("chord parts to count, but the result backend cannot run chords")
        }
        while progress.done < parts.count {
            let part = parts[progress.done]
            let token = progress.token ?? Canvas.uuid4()
            progress.token = token
            if progress.joined == nil {
                guard let results = try chords.chordPartReturned(part, claimToken: token) else {
                    progress = ChordProgress(done: progress.done + 1)
                    continue
                }
                progress.joined = canvas.chordJoined(part, results: results)
            }
            let next = progress.joined!
            if !progress.claimExtended, !next.chordFailed {
                // As Celery 5.7 does before publishing: a claim that expired meanwhile (a slow
                // retry) may have passed to another host, which then applies the body instead.
                guard try chords.extendChordClaim(groupId: part.groupId, claimToken: token, seconds: 30) else {
                    logger.warning("chord \(part.groupId): the dispatch claim passed to another host; it applies the body")
                    progress = ChordProgress(done: progress.done + 1)
                    continue
                }
            }
            progress.claimExtended = true
            if !progress.sizesSet, !next.chordSizes.isEmpty { try chords.setChordSizes(next.chordSizes) }
            progress.sizesSet = true
            while progress.published < next.publish.count {
                let (queue, message) = next.publish[progress.published]
                try publish(message, toQueue: queue)
                progress.published += 1
            }
            if !progress.stored, !next.results.isEmpty { try chords.store(next.results) }
            progress.stored = true
            while progress.publishedAfterStore < next.publishAfterStore.count {
                let (queue, message) = next.publishAfterStore[progress.publishedAfterStore]
                try publish(message, toQueue: queue)
                progress.publishedAfterStore += 1
            }
            try chords.chordFinished(groupId: part.groupId, claimToken: token, failed: next.chordFailed)
            progress = ChordProgress(done: progress.done + 1)
        }
    }
}
