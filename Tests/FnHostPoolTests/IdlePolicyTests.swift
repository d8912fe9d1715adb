import FnHostPool
import Testing

/// The idle reaper's decisions, driven by a manual clock: no processes, no sleeps.
@Suite struct IdlePolicyTests {
    private func idle(_ pairs: (Int32, Double)...) -> [IdlePolicy.IdleProcess] {
        pairs.map { IdlePolicy.IdleProcess(pid: $0.0, idleSince: $0.1) }
    }

    @Test func neverReapsWithoutATimeout() {
        let review = IdlePolicy.never.review(idle: idle((1, 0)), alive: 1, now: 1e9)
        #expect(review == .init(reap: [], nextReview: nil))
        #expect(IdlePolicy(idleTimeout: 0) == .never)
    }

    @Test func reapsOnlyProcessesIdleForLongerThanTheTimeout() {
        let policy = IdlePolicy(idleTimeout: 10)
        let review = policy.review(idle: idle((1, 100), (2, 105)), alive: 3, now: 110)
        #expect(review.reap == [1])
        #expect(review.nextReview == 115)
    }

    @Test func nothingIdleMeansNothingToWaitFor() {
        #expect(IdlePolicy(idleTimeout: 10).review(idle: [], alive: 4, now: 50) == .init(reap: [], nextReview: nil))
    }

    @Test func nextReviewIsTheEarliestExpiry() {
        let review = IdlePolicy(idleTimeout: 5).review(idle: idle((1, 30), (2, 10), (3, 20)), alive: 3, now: 12)
        #expect(review.reap.isEmpty)
        #expect(review.nextReview == 15)
    }

    @Test func aPoolShrinksToZeroWithoutAMinimum() {
        let review = IdlePolicy(idleTimeout: 1).review(idle: idle((1, 0), (2, 0.5)), alive: 2, now: 3)
        #expect(Set(review.reap) == [1, 2])
        #expect(review.nextReview == nil)
    }

    @Test func theMinimumIsNeverReapedAndTheLongestIdleGoFirst() {
        let policy = IdlePolicy(idleTimeout: 1, minProcesses: 1)
        let review = policy.review(idle: idle((7, 2), (8, 0), (9, 1)), alive: 3, now: 10)
        #expect(review.reap == [8, 9])
        #expect(policy.review(idle: idle((7, 2)), alive: 1, now: 10).reap.isEmpty)
    }

    @Test func busyProcessesCountTowardTheMinimum() {
        let policy = IdlePolicy(idleTimeout: 1, minProcesses: 2)
        // Two busy processes already make the minimum: every expired idle one goes.
        #expect(policy.review(idle: idle((1, 0), (2, 0)), alive: 4, now: 5).reap.count == 2)
        // One busy: one idle process survives.
        #expect(policy.review(idle: idle((1, 0), (2, 0)), alive: 3, now: 5).reap == [1])
    }

    @Test func aProcessIdleExactlyForTheTimeoutIsReaped() {
        #expect(IdlePolicy(idleTimeout: 2).review(idle: idle((1, 3)), alive: 1, now: 5).reap == [1])
    }
}
