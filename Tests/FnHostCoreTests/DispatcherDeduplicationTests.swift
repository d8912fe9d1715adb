import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherDeduplicationTests {
    @Test func aRedeliveryOfATaskThatAlreadySucceededIsAcknowledgedWithoutRunning() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        host.start()
        defer { host.stop() }
        let done = delivery(of: try taskMessage(id: "done", task: "work", ["redelivered": true]), queue: "work")
        let fresh = delivery(of: try taskMessage(id: "fresh", task: "work", ["redelivered": true]), queue: "work")
        host.dispatcher.received([done, fresh], alreadySucceeded: ["done"])
        #expect(host.broker.waitForResult("fresh", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.executor.startedIds == ["fresh"])
        #expect(host.broker.result("done") == nil)
    }

    @Test func aRedeliveredGroupMemberRunsAgainSoItsChordPartIsCounted() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        host.start()
        defer { host.stop() }
        let member = delivery(of: try taskMessage(id: "member", task: "work", ["redelivered": true, "group": "g-1", "group_index": 0]), queue: "work")
        host.dispatcher.received([member], alreadySucceeded: ["member"])
        #expect(eventually { host.executor.startedIds == ["member"] })
        host.settle()
    }

    @Test func theInMemoryBackendReportsOnlySuccesses() throws {
        let backend = InMemoryBroker()
        try backend.store([.success(taskId: "a", resultJSON: Array("1".utf8)),
                           .exception(TaskException(pluginType: "ValueError", message: "x"), taskId: "b")])
        #expect(try backend.succeeded(among: ["a", "b", "c"]) == ["a"])
    }
}
