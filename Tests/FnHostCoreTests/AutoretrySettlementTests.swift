import CeleryProtocol
import FnHostCore
import Testing

@Suite struct AutoretrySettlementTests {
    let helper = SettlementTests()

    @Test func autoretryRetriesAFailureWithBackoffAndStoresTheExceptionAsRetry() throws {
        let request = try helper.request(#"{"autoretry": true, "retry_backoff": 2, "retry_jitter": false}"#, retries: 1)
        let s = Settlement.of(request, outcome: .failure(TaskException(pluginType: "ValueError", message: "flaky"), traceback: nil),
                              now: 1_000_000, randomUpTo: { _ in Issue.record("no jitter wanted"); return 0 })
        try #require(s.publish.count == 1)
        #expect(s.publish[0].message.retries == 2)
        #expect(s.publish[0].message.id == "t-1")
        #expect(s.publish[0].message.eta == 1_000_004.0)  // 2 * 2**1
        let (state, json) = try helper.exceptionResult(s)
        #expect(state == .retry)
        #expect(json["exc_type"] == "ValueError")
        #expect(s.disposition == .ack)
    }

    @Test func autoretryPastMaxRetriesFailsWithTheTasksOwnException() throws {
        let request = try helper.request(#"{"autoretry": true, "max_retries": 2}"#, retries: 2)
        let s = Settlement.of(request, outcome: .failure(TaskException(pluginType: "ValueError", message: "still flaky"), traceback: nil))
        #expect(s.publish.isEmpty)
        let (state, json) = try helper.exceptionResult(s)
        #expect(state == .failure)
        #expect(json["exc_type"] == "ValueError")
    }

    @Test func withoutAutoretryAFailureIsFinal() throws {
        let s = Settlement.of(try helper.request(), outcome: .failure(TaskException(pluginType: "ValueError", message: "x"), traceback: nil))
        #expect(s.publish.isEmpty)
        #expect(try helper.exceptionResult(s).state == .failure)
    }

    @Test func autoretryDoesNotRetryAWorkerLostOrATimeLimit() throws {
        let request = try helper.request(#"{"autoretry": true}"#)
        #expect(Settlement.of(request, outcome: .workerLost(how: "signal 9 (SIGKILL)")).publish.isEmpty)
        #expect(Settlement.of(request, outcome: .timeLimitExceeded(seconds: 1)).publish.isEmpty)
    }

    @Test func anExplicitRetryWithoutCountdownUsesTheJitteredBackoff() throws {
        let request = try helper.request(#"{"retry_backoff": true, "max_retries": null}"#, retries: 3)
        let s = Settlement.of(request, outcome: .retry(countdown: nil, reason: "r"), now: 0, randomUpTo: { n in
            #expect(n == 8)
            return 5
        })
        #expect(s.publish.first?.message.eta == 5.0)
    }
}
