import CeleryProtocol
import FnHostCore
import Testing

@Suite struct SettlementTests {
    func request(_ opts: String = "{}", retries: Int = 0, _ extra: JSONObject = [:]) throws -> TaskRequest {
        var headers = extra
        headers["retries"] = .int(Int64(retries))
        let message = try taskMessage(id: "t-1", task: "math.add", args: [2, 3], headers)
        let function = RegisteredFunction(name: "math.add", kind: .task, options: try options(opts), plugin: "libmath.so")
        return TaskRequest(delivery: delivery(of: message, queue: "math"), message: message, function: function)
    }

    func exceptionResult(_ s: Settlement) throws -> (state: TaskState, json: JSON) {
        try #require(s.results.count == 1)
        return (s.results[0].status, try JSONParser.parse(s.results[0].resultJSON))
    }

    @Test func successStoresSuccessThenAcks() throws {
        let s = Settlement.of(try request(), outcome: .success(resultJSON: Array("5".utf8)))
        #expect(s.disposition == .ack)
        #expect(s.publish.isEmpty)
        try #require(s.results.count == 1)
        #expect(s.results[0].status == .success)
        #expect(s.results[0].resultJSON == Array("5".utf8))
        #expect(s.results[0].taskId == "t-1")
        #expect(s.delivery?.tag == "tag-1")
    }

    @Test func ignoreResultOptionStoresNothingButAcks() throws {
        let s = Settlement.of(try request(#"{"ignore_result": true}"#), outcome: .success(resultJSON: Array("5".utf8)))
        #expect(s.results.isEmpty)
        #expect(s.disposition == .ack)
    }

    @Test func ignoreResultHeaderBeatsTheOption() throws {
        let ignored = Settlement.of(try request(#"{"ignore_result": false}"#, ["ignore_result": true]), outcome: .success(resultJSON: Array("1".utf8)))
        #expect(ignored.results.isEmpty)
        let stored = Settlement.of(try request(#"{"ignore_result": true}"#, ["ignore_result": false]), outcome: .success(resultJSON: Array("1".utf8)))
        #expect(stored.results.count == 1)
    }

    @Test func earlyAckMeansNoDispositionAfterwards() throws {
        let early = try request(#"{"acks_late": false}"#)
        #expect(Settlement.of(early, outcome: .success(resultJSON: Array("1".utf8))).disposition == .none)
        #expect(Settlement.of(early, outcome: .failure(TaskException(pluginType: "ValueError", message: "x"), traceback: nil)).disposition == .none)
        #expect(Settlement.of(early, outcome: .workerLost(how: "signal 9 (SIGKILL)")).disposition == .none)
    }

    @Test func failureStoresTheExceptionAndTraceback() throws {
        let s = Settlement.of(try request(), outcome: .failure(TaskException(pluginType: "ZeroDivisionError", message: "division by zero"), traceback: "tb"))
        #expect(s.disposition == .ack)
        let (state, json) = try exceptionResult(s)
        #expect(state == .failure)
        #expect(json == .object(["exc_type": "ZeroDivisionError", "exc_message": ["division by zero"], "exc_module": "builtins"]))
        #expect(s.results[0].traceback == "tb")
    }

    @Test func rejectedStoresTheDecodingException() throws {
        let problem = MessageDecodingError(.contentDisallowed, "no pickle", taskId: "t-1")
        let (state, json) = try exceptionResult(Settlement.of(try request(), outcome: .rejected(problem)))
        #expect(state == .failure)
        #expect(json["exc_type"] == "ContentDisallowed")
        #expect(json["exc_module"] == "kombu.exceptions")
    }

    @Test func timeLimitStoresTimeLimitExceeded() throws {
        let (state, json) = try exceptionResult(Settlement.of(try request(), outcome: .timeLimitExceeded(seconds: 2)))
        #expect(state == .failure)
        #expect(json["exc_type"] == "TimeLimitExceeded")
        #expect(json["exc_module"] == "billiard.exceptions")
    }

    @Test func workerLostWithRejectOnWorkerLostRequeues() throws {
        let s = Settlement.of(try request(#"{"reject_on_worker_lost": true}"#), outcome: .workerLost(how: "signal 11 (SIGSEGV)"))
        #expect(s.disposition == .requeue)
        #expect(s.results.isEmpty)
        #expect(s.publish.isEmpty)
    }

    @Test func workerLostWithoutRejectStoresWorkerLostError() throws {
        let s = Settlement.of(try request(), outcome: .workerLost(how: "signal 11 (SIGSEGV)"))
        #expect(s.disposition == .ack)
        let (state, json) = try exceptionResult(s)
        #expect(state == .failure)
        #expect(json["exc_type"] == "WorkerLostError")
        #expect(json["exc_module"] == "billiard.exceptions")
        #expect(json["exc_message"] == ["Worker exited prematurely: signal 11 (SIGSEGV)."])
    }

    @Test func workerLostWithEarlyAckCannotRequeueAndFails() throws {
        // reject_on_worker_lost needs acks_late: an early-acked message is gone from the broker.
        let s = Settlement.of(try request(#"{"acks_late": false, "reject_on_worker_lost": true}"#), outcome: .workerLost(how: "signal 9 (SIGKILL)"))
        #expect(s.disposition == .none)
        let (state, json) = try exceptionResult(s)
        #expect(state == .failure)
        #expect(json["exc_type"] == "WorkerLostError")
    }

    @Test func retryPublishesACopyWithRetriesPlusOneAndAnEta() throws {
        let now = 1_795_565_832.25
        let original = try request(retries: 1)
        let s = Settlement.of(original, outcome: .retry(countdown: 60, reason: "busy"), now: now)
        #expect(s.disposition == .ack)
        try #require(s.publish.count == 1)
        let (queue, next) = s.publish[0]
        #expect(queue == "math")
        #expect(next.id == "t-1")
        #expect(next.task == "math.add")
        #expect(next.retries == 2)
        let eta = try #require(next.eta)
        #expect(eta == now + 60)
        #expect(next.parentId == "t-1")
        #expect(next.body == original.message.body)
        #expect(next.headers["root_id"] == original.message.headers["root_id"])
        let (state, json) = try exceptionResult(s)
        #expect(state == .retry)
        #expect(json["exc_type"] == "Retry")
        #expect(s.results[0].taskId == "t-1")
    }

    @Test func retryWithoutCountdownUsesDefaultRetryDelay() throws {
        let now = 1_000_000.0
        let s = Settlement.of(try request(#"{"default_retry_delay": 7}"#), outcome: .retry(countdown: nil, reason: "r"), now: now)
        #expect(s.publish.first?.message.eta == now + 7)
    }

    @Test(arguments: [Double.infinity, 1e300, Double(Int64.max)])
    func retryWithAnUnrepresentableCountdownIsSettledNotACrash(countdown: Double) throws {
        // A plugin chooses the countdown (set_retry); an absurd one must not bring the host down.
        let s = Settlement.of(try request(), outcome: .retry(countdown: countdown, reason: "far"), now: 1_000_000)
        #expect(s.disposition == .ack)
        try #require(s.publish.count == 1)
        let eta = try #require(s.publish[0].message.eta)
        #expect(eta > 1_000_000 + 86_400 * 365 * 1000)
    }

    @Test func retryPastMaxRetriesFailsWithMaxRetriesExceeded() throws {
        let s = Settlement.of(try request(#"{"max_retries": 3}"#, retries: 3), outcome: .retry(countdown: 1, reason: "again"))
        #expect(s.publish.isEmpty)
        // The message goes to the dead-letter queue (acknowledged in the same step).
        guard case .deadLetter(let reason) = s.disposition else { Issue.record("expected a dead letter, got \(s.disposition)"); return }
        #expect(reason.hasPrefix("MaxRetriesExceededError"))
        let (state, json) = try exceptionResult(s)
        #expect(state == .failure)
        #expect(json["exc_type"] == "MaxRetriesExceededError")
        #expect(json["exc_module"] == "celery.exceptions")
        // The last allowed retry still goes out.
        #expect(Settlement.of(try request(#"{"max_retries": 3}"#, retries: 2), outcome: .retry(countdown: 1, reason: "again")).publish.count == 1)
    }

    @Test func unlimitedMaxRetriesAlwaysRetries() throws {
        let s = Settlement.of(try request(#"{"max_retries": null}"#, retries: 1000), outcome: .retry(countdown: 0, reason: "r"))
        #expect(s.publish.first?.message.retries == 1001)
    }
}
