import CeleryProtocol
import FnHostCore
import Logging
import Testing

/// A backend whose first `store` fails, as a Redis restart would make it.
final class FailingOnceBackend: ResultBackend, @unchecked Sendable {
    let inner: InMemoryBroker
    private let lock = ConditionLock()
    private var failures = 1
    init(_ inner: InMemoryBroker) { self.inner = inner }
    func store(_ results: [ResultMeta]) throws {
        let fail = lock.withLock { () -> Bool in
            defer { failures -= 1 }
            return failures > 0
        }
        if fail { throw FnHostTestError.backendDown }
        try inner.store(results)
    }
    func succeeded(among taskIds: [String]) throws -> Set<String> { try inner.succeeded(among: taskIds) }
    func close() {}
}

enum FnHostTestError: Error { case backendDown }

@Suite struct OutcomeHandlerRetryTests {
    @Test func aBatchRetriedAfterABackendErrorPublishesItsRetryOnceAndStillAcks() throws {
        let memory = InMemoryBroker()
        let recorder = RecordingBroker(memory)
        let handler = OutcomeHandler(broker: recorder, backend: FailingOnceBackend(memory), logger: Logger(label: "test"))
        handler.start()
        defer { handler.stop() }
        let message = try taskMessage(id: "r-1", task: "work")
        memory.send(message, to: "work")
        let fetched = try memory.fetch(FetchPlan(entries: [.init(queue: "work", limit: 1)], total: 1), timeout: 1)
        let function = RegisteredFunction(name: "work", kind: .task, options: TaskOptions(), plugin: "libwork.so")
        let settlement = Settlement.of(TaskRequest(delivery: fetched[0], message: message, function: function),
                                       outcome: .retry(countdown: 60, reason: "later"))
        handler.submit(settlement)
        #expect(handler.flush(timeout: 10))
        // Published once despite the retried batch; RETRY stored; the original acknowledged.
        #expect(memory.length(of: "work") == 1)
        #expect(memory.result("r-1")?.status == .retry)
        #expect(memory.unackedCount == 0)
    }
}
