/// What `/healthz` (liveness) and `/readyz` (readiness) answer, from facts gathered at probe
/// time. A pure value: tests drive it with made-up facts and a made-up clock.
///
/// Liveness fails only for what a restart cures: the fetch loop has stopped, or it has made no
/// progress for `stallTimeout` seconds while messages wait in its queues (the "alive but not
/// consuming" state Celery users report after broker reconnects). A broker that is down is
/// not a liveness failure (a restart would not bring it back): readiness fails instead, as it
/// does while no function is loaded.
public struct HealthPolicy: Sendable, Equatable {
    /// Seconds without progress, with work waiting, after which the host is not alive.
    public var stallTimeout: Double

    public init(stallTimeout: Double = 60) {
        self.stallTimeout = stallTimeout
    }

    /// The facts of one probe.
    public struct Facts: Sendable, Equatable {
        /// Whether the fetch loop runs (false after it stopped, or during shutdown).
        public var consumerRunning: Bool
        /// Seconds since the fetch loop last completed a round.
        public var secondsSinceProgress: Double
        /// Whether the last fetch reached the broker.
        public var brokerConnected: Bool
        /// Messages waiting in the queues this host consumes; `nil` when the broker could not say.
        public var waitingMessages: Int?
        /// Free task slots now (concurrency minus tasks running).
        public var freeSlots: Int
        /// Functions loaded.
        public var functionsLoaded: Int
        /// Whether a shutdown has begun.
        public var shuttingDown: Bool

        public init(consumerRunning: Bool, secondsSinceProgress: Double, brokerConnected: Bool, waitingMessages: Int?,
                    freeSlots: Int, functionsLoaded: Int, shuttingDown: Bool = false) {
            self.consumerRunning = consumerRunning
            self.secondsSinceProgress = secondsSinceProgress
            self.brokerConnected = brokerConnected
            self.waitingMessages = waitingMessages
            self.freeSlots = freeSlots
            self.functionsLoaded = functionsLoaded
            self.shuttingDown = shuttingDown
        }
    }

    /// A probe's verdict and the reason, written in the response body.
    public struct Verdict: Sendable, Equatable {
        public var ok: Bool
        public var reason: String
        public init(ok: Bool, reason: String) {
            self.ok = ok
            self.reason = reason
        }
    }

    public func liveness(_ f: Facts) -> Verdict {
        if f.shuttingDown { return Verdict(ok: true, reason: "shutting down") }
        if !f.consumerRunning { return Verdict(ok: false, reason: "the consumer has stopped") }
        if f.secondsSinceProgress > stallTimeout, let waiting = f.waitingMessages, waiting > 0, f.freeSlots > 0 {
            return Verdict(ok: false, reason: "no fetch progress for \(Int(f.secondsSinceProgress))s while \(waiting) messages wait and \(f.freeSlots) slots are free")
        }
        return Verdict(ok: true, reason: "ok")
    }

    public func readiness(_ f: Facts) -> Verdict {
        if f.shuttingDown { return Verdict(ok: false, reason: "shutting down") }
        if !f.brokerConnected { return Verdict(ok: false, reason: "no broker connection") }
        if f.functionsLoaded == 0 { return Verdict(ok: false, reason: "no function is loaded") }
        if !f.consumerRunning { return Verdict(ok: false, reason: "the consumer is not running") }
        return Verdict(ok: true, reason: "ok")
    }
}
