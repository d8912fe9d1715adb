import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherScheduleTests {
    @Test func expiredTaskIsRevokedWithoutRunning() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        host.start()
        defer { host.stop() }
        let past = CeleryTime.isoformat(CeleryTime.now() - 10)
        host.send(try taskMessage(id: "stale", task: "work", ["expires": .string(past)]))
        host.send(try taskMessage(id: "fresh", task: "work", ["expires": .string(CeleryTime.isoformat(CeleryTime.now() + 3600))]))

        let meta = try #require(host.broker.waitForResult("stale", timeout: 10))
        #expect(meta.status == .revoked)
        #expect(resultValue(meta) == .object(["exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"]))
        #expect(host.broker.waitForResult("fresh", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.executor.startedIds == ["fresh"])
        #expect(host.broker.unackedCount == 0)
    }

    @Test func etaTaskRunsAfterItsEtaAndNotBefore() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 2, handlers: ["work": succeed])
        let eta = CeleryTime.now() + 0.3
        // The ETA task is first in the queue; a task without ETA sent after it runs first.
        host.send(try taskMessage(id: "later", task: "work", ["eta": .string(CeleryTime.isoformat(eta))]))
        host.send(try taskMessage(id: "now", task: "work"))
        host.start()
        defer { host.stop() }

        #expect(host.broker.waitForResult("now", timeout: 10)?.status == .success)
        if CeleryTime.now() < eta - 0.001 {
            #expect(host.broker.result("later") == nil)
            #expect(!host.executor.startedIds.contains("later"))
        }
        #expect(host.broker.waitForResult("later", timeout: 10)?.status == .success)
        let started = host.executor.started
        #expect(started.map(\.id) == ["now", "later"])
        // The dispatcher runs a task whose ETA is within 1 ms as due; it never starts one earlier.
        let laterStart = try #require(started.last?.at)
        #expect(laterStart >= eta - 0.001)
        host.settle()
        #expect(host.broker.unackedCount == 0)
    }
}
