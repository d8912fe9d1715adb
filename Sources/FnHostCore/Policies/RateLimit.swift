/// A task rate limit as Celery writes it (`"10/s"`, `"100/m"`, `"1000/h"`, or a number meaning
/// per second), enforced per host as Celery's worker enforces it per worker: a token bucket of
/// capacity 1, so starts are spaced evenly at `1/rate` seconds and never burst.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Starts allowed per second.
    public let perSecond: Double

    public init?(perSecond: Double) {
        guard perSecond > 0, perSecond.isFinite else { return nil }
        self.perSecond = perSecond
    }

    /// Parses Celery's notation; `nil` when it is not one.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 1, let n = Double(text) {
            self.init(perSecond: n)
            return
        }
        guard parts.count == 2, let n = Double(parts[0]) else { return nil }
        switch parts[1] {
        case "s": self.init(perSecond: n)
        case "m": self.init(perSecond: n / 60)
        case "h": self.init(perSecond: n / 3600)
        default: return nil
        }
    }

    public var description: String { "\(perSecond)/s" }
}

/// The state of one function's rate limit: when the next start is allowed.
/// Pure: the caller passes the time.
public struct TokenBucket: Sendable, Equatable {
    public let limit: RateLimit
    private var nextAllowed: Double

    public init(limit: RateLimit, now: Double) {
        self.limit = limit
        self.nextAllowed = now
    }

    /// Takes the token if a start is allowed at `now` and returns 0; otherwise takes nothing
    /// and returns the seconds to wait.
    public mutating func take(now: Double) -> Double {
        if now + 1e-9 < nextAllowed { return nextAllowed - now }
        nextAllowed = max(now, nextAllowed) + 1 / limit.perSecond
        return 0
    }
}
