import CeleryProtocol
import FnHostCore
import Testing

/// Records every task event a dispatcher reports.
final class EventLog: TaskObserver, @unchecked Sendable {
    private let lock = ConditionLock()
    private var _events: [TaskEvent] = []
    func observe(_ event: TaskEvent) { lock.withLock { _events.append(event) } }
    var events: [TaskEvent] { lock.withLock { _events } }

    /// "received:id", "started:id"... in order.
    var summary: [String] {
        events.map { e in
            switch e {
            case .received(let r): return "received:\(r.id)"
            case .started(let r): return "started:\(r.id)"
            case .succeeded(let r, _, _): return "succeeded:\(r.id)"
            case .failed(let r, let x, _, _): return "failed:\(r.id):\(x.type)"
            case .retried(let r, _, _): return "retried:\(r.id)"
            case .revoked(let r, let expired, let terminated, _): return "revoked:\(r.id):\(expired ? "expired" : terminated ? "terminated" : "id")"
            case .rejected(let r, let requeue): return "rejected:\(r.id):\(requeue)"
            case .refused(_, let id, let name): return "refused:\(id ?? "?"):\(name ?? "?")"
            }
        }
    }
}

@Suite struct DispatcherRevokeTests {
    @Test func aRevokedIdIsStoredRevokedAndNeverRuns() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        let log = EventLog()
        host.dispatcher.observer = log
        host.dispatcher.revoke(["gone-1"])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "gone-1", task: "math.add"))
        host.send(try taskMessage(id: "kept-1", task: "math.add"))

        let meta = try #require(host.broker.waitForResult("gone-1", timeout: 10))
        #expect(meta.status == .revoked)
        #expect(host.broker.waitForResult("kept-1", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.executor.startedIds == ["kept-1"])
        #expect(host.broker.unackedCount == 0)
        #expect(log.summary == ["revoked:gone-1:id", "received:kept-1", "started:kept-1", "succeeded:kept-1"])
        #expect(host.dispatcher.snapshot().revoked == ["gone-1"])
    }

    @Test func revokingAReservedTaskSettlesItAtOnce() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["math.slow": "{}"], concurrency: 1, handlers: [
            "math.slow": { _ in gate.wait(); return .success(resultJSON: Array("1".utf8)) },
        ])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "running", task: "math.slow"))
        host.send(try taskMessage(id: "waiting", task: "math.slow"))
        #expect(eventually { host.dispatcher.snapshot().reserved.map(\.id) == ["waiting"] })
        #expect(host.dispatcher.snapshot().active.map(\.request.id) == ["running"])

        host.dispatcher.revoke(["waiting"])
        #expect(host.broker.waitForResult("waiting", timeout: 10)?.status == .revoked)
        #expect(host.dispatcher.snapshot().reserved.isEmpty)
        gate.open()
        #expect(host.broker.waitForResult("running", timeout: 10)?.status == .success)
        #expect(host.executor.startedIds == ["running"])
        #expect(host.dispatcher.snapshot().totals == ["math.slow": 1])
    }

    @Test func revokedIdsAreBoundedOldestForgottenFirst() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        let ids = (0...Dispatcher.maxRevoked).map { "id-\($0)" }
        host.dispatcher.revoke(ids)
        #expect(host.dispatcher.isRevoked("id-0") == false)
        #expect(host.dispatcher.isRevoked("id-1"))
        #expect(host.dispatcher.snapshot().revoked.count == Dispatcher.maxRevoked)
    }

    @Test func observerSeesFailuresWithTheirExceptionType() throws {
        let host = try TestHost(functions: ["math.div": "{}"], concurrency: 1, handlers: [
            "math.div": { _ in .failure(TaskException(pluginType: "ZeroDivisionError", message: "division by zero"), traceback: nil) },
        ])
        let log = EventLog()
        host.dispatcher.observer = log
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "div-1", task: "math.div"))
        host.send(try taskMessage(id: "nobody", task: "math.nope"), to: "math.div")
        #expect(host.broker.waitForResult("div-1", timeout: 10)?.status == .failure)
        #expect(host.broker.waitForResult("nobody", timeout: 10)?.status == .failure)
        #expect(Set(log.summary) == ["received:div-1", "started:div-1", "failed:div-1:ZeroDivisionError", "refused:nobody:math.nope"])
        guard case .failed(_, _, let traceback, _)? = log.events.first(where: { if case .failed = $0 { return true } else { return false } }) else {
            Issue.record("no failed event")
            return
        }
        #expect(traceback?.contains("ZeroDivisionError") == true)
    }

    @Test func controlChangesRateAndTimeLimitsAndConsumers() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 2, handlers: ["math.add": succeed])
        #expect(throws: ControlError.self) { try host.dispatcher.setRateLimit(task: "math.nope", "1/s") }
        #expect(throws: ControlError.self) { try host.dispatcher.setRateLimit(task: "math.add", "lots") }
        try host.dispatcher.setRateLimit(task: "math.add", "10/s")
        try host.dispatcher.setTimeLimit(task: "math.add", hard: 5, soft: 2)
        #expect(host.dispatcher.addConsumer(queue: "extra"))
        #expect(!host.dispatcher.addConsumer(queue: "extra"))
        #expect(host.dispatcher.queues == ["extra", "math.add"])
        #expect(host.dispatcher.fetchPlan()?.entries.map(\.queue).sorted() == ["extra", "math.add"])
        #expect(host.dispatcher.cancelConsumer(queue: "extra"))
        #expect(host.dispatcher.queues == ["math.add"])
        host.dispatcher.setConcurrency(5)
        #expect(host.dispatcher.snapshot().concurrency == 5)
    }

    @Test func timeLimitSetByControlAppliesToTasksReceivedAfter() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: [
            "math.add": { request in .success(resultJSON: Array(String(request.hardTimeLimit ?? -1).utf8)) },
        ])
        try host.dispatcher.setTimeLimit(task: "math.add", hard: 7, soft: nil)
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "limited", task: "math.add"))
        #expect(resultValue(host.broker.waitForResult("limited", timeout: 10)) == .double(7))
    }
}
