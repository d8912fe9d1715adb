import CeleryProtocol
import FnHostCore
import Testing

@Suite struct RetryPolicyTests {
    /// Celery's autoretry table: factor = int(max(1, retry_backoff)); countdown =
    /// min(retry_backoff_max, factor * 2**retries); no jitter here.
    @Test(arguments: [
        (1.0, 600.0, 0, 1.0), (1.0, 600.0, 1, 2.0), (1.0, 600.0, 3, 8.0), (1.0, 600.0, 9, 512.0), (1.0, 600.0, 10, 600.0),
        (3.0, 600.0, 0, 3.0), (3.0, 600.0, 2, 12.0), (0.5, 600.0, 2, 4.0), (2.7, 600.0, 1, 4.0), (1.0, 5.0, 4, 5.0),
        (1.0, 600.0, 5000, 600.0),
    ])
    func backoffFollowsCeleryTable(base: Double, cap: Double, retries: Int, expected: Double) {
        let policy = RetryPolicy(backoff: base, backoffMax: cap, jitter: false)
        #expect(policy.countdown(requested: nil, retries: retries, randomUpTo: { _ in Issue.record("no jitter wanted"); return 0 }) == expected)
    }

    @Test func jitterDrawsAWholeNumberUpToTheCountdown() {
        let policy = RetryPolicy(backoff: 1, backoffMax: 600, jitter: true)
        var asked: [Int] = []
        let countdown = policy.countdown(requested: nil, retries: 3, randomUpTo: { n in asked.append(n); return n / 2 })
        #expect(asked == [8])
        #expect(countdown == 4)
        #expect(policy.countdown(requested: nil, retries: 3, randomUpTo: { _ in 0 }) == 0)
    }

    @Test func aRequestedCountdownBeatsBackoffAndDefault() {
        let policy = RetryPolicy(defaultRetryDelay: 180, backoff: 1, jitter: true)
        #expect(policy.countdown(requested: 2.5, retries: 4, randomUpTo: { _ in 99 }) == 2.5)
        #expect(policy.countdown(requested: 0, retries: 4, randomUpTo: { _ in 99 }) == 0)
    }

    @Test func aNegativeCountdownMeansThePolicy() {
        #expect(RetryPolicy(defaultRetryDelay: 7).countdown(requested: -1, retries: 0, randomUpTo: { _ in 0 }) == 7)
        #expect(RetryPolicy(defaultRetryDelay: 7).countdown(requested: nil, retries: 2, randomUpTo: { _ in 0 }) == 7)
        #expect(RetryPolicy(backoff: 1, jitter: false).countdown(requested: -1, retries: 2, randomUpTo: { _ in 0 }) == 4)
    }

    @Test func maxRetriesCountsAttemptsAfterTheFirst() {
        let policy = RetryPolicy(maxRetries: 2)
        #expect(policy.allowsRetry(after: 0))
        #expect(policy.allowsRetry(after: 1))
        #expect(!policy.allowsRetry(after: 2))
        #expect(RetryPolicy(maxRetries: nil).allowsRetry(after: 1_000_000))
        #expect(!RetryPolicy(maxRetries: 0).allowsRetry(after: 0))
    }

    @Test func optionsBuildThePolicy() throws {
        let options = try TaskOptions.parse(json: #"{"max_retries": 5, "autoretry": true, "retry_backoff": 2, "retry_backoff_max": 30, "retry_jitter": false, "default_retry_delay": 9}"#)
        #expect(RetryPolicy(options) == RetryPolicy(maxRetries: 5, defaultRetryDelay: 9, autoretry: true, backoff: 2, backoffMax: 30, jitter: false))
    }
}
