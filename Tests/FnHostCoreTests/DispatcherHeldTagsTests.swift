import CeleryProtocol
import FnHostCore
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A result backend whose `store` waits at a gate: a settlement stays under way until it opens.
final class GatedBackend: ResultBackend, @unchecked Sendable {
    let inner: InMemoryBroker
    let reached = Gate()
    let gate = Gate()
    init(_ inner: InMemoryBroker) { self.inner = inner }
    func store(_ results: [ResultMeta]) throws {
        reached.open()
        gate.wait()
        try inner.store(results)
    }
    func succeeded(among taskIds: [String]) throws -> Set<String> { try inner.succeeded(among: taskIds) }
    func close() {}
}

/// `heldTags`: what a visibility or lease sweep must not give back covers a delivery from its
/// fetch until it is settled on the broker, including after its task finished (a sweep that gave
/// it back then would have it redelivered although it succeeded).
@Suite struct DispatcherHeldTagsTests {
    @Test func aFinishedTasksDeliveryIsHeldUntilItsSettlementIsSubmitted() throws {
        let (host, held) = try TestHost.heldAtSuccess(taskId: "h-1")
        defer { held.gate.open(); host.stop() }

        #expect(host.dispatcher.heldTags().count == 1)
        #expect(host.settle(held))
        #expect(host.dispatcher.heldTags().isEmpty)
    }

    @Test func aSettlementUnderWayKeepsItsDeliveryHeld() throws {
        let memory = InMemoryBroker()
        let backend = GatedBackend(memory)
        let handler = OutcomeHandler(broker: memory, backend: backend, logger: Logger(label: "test"))
        handler.start()
        defer { backend.gate.open(); handler.stop() }
        let message = try taskMessage(id: "h-2", task: "work")
        memory.send(message, to: "work")
        let fetched = try memory.fetch(FetchPlan(entries: [.init(queue: "work", limit: 1)], total: 1), timeout: 1)
        let function = RegisteredFunction(name: "work", kind: .task, options: TaskOptions(), plugin: "libwork.so")
        let settlement = Settlement.of(TaskRequest(delivery: fetched[0], message: message, function: function),
                                       outcome: .success(resultJSON: Array("5".utf8)))
        // Inline, on a thread of its own: it blocks in `store` until the gate opens.
        let submitter = startThread(name: "test-submitter") { handler.submitAndSettle(settlement) }
        backend.reached.wait()
        #expect(handler.settlingTags() == [fetched[0].tag])
        #expect(memory.unackedCount == 1)
        backend.gate.open()
        submitter.join()
        #expect(handler.settlingTags().isEmpty)
        #expect(memory.unackedCount == 0)
    }

    @Test func pendingSettlementsKeepTheirDeliveriesHeld() throws {
        let memory = InMemoryBroker()
        let handler = OutcomeHandler(broker: memory, backend: memory, logger: Logger(label: "test"))
        // Not started: settlements stay pending.
        let function = RegisteredFunction(name: "work", kind: .task, options: TaskOptions(), plugin: "libwork.so")
        var tags: Set<String> = []
        for id in ["p-1", "p-2"] {
            let message = try taskMessage(id: id, task: "work")
            memory.send(message, to: "work")
            let fetched = try memory.fetch(FetchPlan(entries: [.init(queue: "work", limit: 1)], total: 1), timeout: 1)
            tags.insert(fetched[0].tag)
            handler.submit(Settlement.of(TaskRequest(delivery: fetched[0], message: message, function: function),
                                         outcome: .success(resultJSON: Array("5".utf8))))
        }
        handler.submit(Settlement(delivery: nil, results: [], disposition: .none))
        #expect(handler.settlingTags() == tags)
        handler.start()
        defer { handler.stop() }
        #expect(handler.flush(timeout: 10))
        #expect(handler.settlingTags().isEmpty)
    }
}
