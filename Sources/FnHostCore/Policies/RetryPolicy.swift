/// When a task is retried, and after how long: Celery's `max_retries`, `default_retry_delay`,
/// `autoretry`, `retry_backoff`, `retry_backoff_max` and `retry_jitter` (celery-protocol.md §5).
///
/// Pure: the random source is injected, so the backoff table is testable
/// (rusty-celery's lesson).
public struct RetryPolicy: Sendable, Equatable {
    /// Retries allowed; `nil` is unlimited.
    public var maxRetries: Int?
    /// Seconds before a retry when neither the task nor the backoff says otherwise.
    public var defaultRetryDelay: Double
    /// Retry every failure (`FNHOST_ERROR`) as if the task had asked for it.
    public var autoretry: Bool
    /// Exponential backoff base in seconds; `nil` disables backoff.
    public var backoff: Double?
    /// Cap of a backoff countdown, seconds.
    public var backoffMax: Double
    /// Full jitter: a random whole number of seconds in `0...countdown`.
    public var jitter: Bool

    public init(maxRetries: Int? = 3, defaultRetryDelay: Double = 180, autoretry: Bool = false, backoff: Double? = nil,
                backoffMax: Double = 600, jitter: Bool = true) {
        self.maxRetries = maxRetries
        self.defaultRetryDelay = defaultRetryDelay
        self.autoretry = autoretry
        self.backoff = backoff
        self.backoffMax = backoffMax
        self.jitter = jitter
    }

    /// The policy a task's options describe.
    public init(_ options: TaskOptions) {
        self.init(maxRetries: options.maxRetries, defaultRetryDelay: options.defaultRetryDelay, autoretry: options.autoretry,
                  backoff: options.retryBackoff, backoffMax: options.retryBackoffMax, jitter: options.retryJitter)
    }

    /// Whether attempt number `retries + 1` is still allowed.
    public func allowsRetry(after retries: Int) -> Bool {
        guard let maxRetries else { return true }
        return retries + 1 <= maxRetries
    }

    /// The countdown of the next attempt, in seconds.
    ///
    /// - `requested` is what the task asked for (`set_retry`'s countdown); a non-negative value
    ///   is used as it is, as Celery's `retry(countdown=...)` is.
    /// - Otherwise, with backoff: `min(backoffMax, int(max(1, backoff)) * 2**retries)`, then with
    ///   jitter a random whole number in `0...countdown` (`randomUpTo(n)` returns one in `0...n`).
    /// - Otherwise `defaultRetryDelay`.
    /// `retries` counts the attempts before this retry (0 on the first failure).
    public func countdown(requested: Double?, retries: Int, randomUpTo: (Int) -> Int) -> Double {
        if let requested, requested >= 0 { return requested }
        guard let backoff else { return defaultRetryDelay }
        let factor = Double(Int(max(1, backoff)))
        let exponent = Double(min(max(retries, 0), 1023))
        var countdown = min(backoffMax, factor * pow2(exponent))
        if jitter {
            countdown = Double(randomUpTo(Int(min(countdown, Double(Int32.max)))))
        }
        return max(0, countdown)
    }

    private func pow2(_ e: Double) -> Double {
        var result = 1.0
        var k = 0.0
        while k < e && result < 1e300 {
            result *= 2
            k += 1
        }
        return result
    }

    /// Full jitter from the system's random source.
    @Sendable public static func systemRandom(_ upTo: Int) -> Int {
        Int.random(in: 0...max(0, upTo))
    }
}
