import CeleryProtocol
import FnHostCore
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `submitAndSettle`: an idle handler settles on the caller's thread; a busy one queues; a
/// failure inline is finished by the handler's thread, once.
@Suite struct OutcomeHandlerInlineTests {
    private func fetchedSettlement(_ memory: InMemoryBroker, id: String) throws -> Settlement {
        let message = try taskMessage(id: id, task: "work")
        memory.send(message, to: "work")
        let fetched = try memory.fetch(FetchPlan(entries: [.init(queue: "work", limit: 1)], total: 1), timeout: 1)
        let function = RegisteredFunction(name: "work", kind: .task, options: TaskOptions(), plugin: "libwork.so")
        return Settlement.of(TaskRequest(delivery: fetched[0], message: message, function: function), outcome: .success(resultJSON: Array("5".utf8)))
    }

    @Test func anIdleHandlerSettlesOnTheCallersThreadBeforeReturning() throws {
        let memory = InMemoryBroker()
        let handler = OutcomeHandler(broker: memory, backend: memory, logger: Logger(label: "test"))
        handler.start()
        defer { handler.stop() }
        handler.submitAndSettle(try fetchedSettlement(memory, id: "i-1"))
        // No flush: done by the time the call returned.
        #expect(memory.result("i-1")?.status == .success)
        #expect(memory.unackedCount == 0)
    }

    @Test func withoutItsThreadTheHandlerOnlyQueues() throws {
        let memory = InMemoryBroker()
        let handler = OutcomeHandler(broker: memory, backend: memory, logger: Logger(label: "test"))
        handler.submitAndSettle(try fetchedSettlement(memory, id: "i-2"))
        #expect(memory.result("i-2") == nil)
        #expect(memory.unackedCount == 1)
        handler.start()
        defer { handler.stop() }
        #expect(handler.flush(timeout: 10))
        #expect(memory.result("i-2")?.status == .success)
        #expect(memory.unackedCount == 0)
    }

    @Test func aFailureInlineIsRetriedByTheThreadAndAckedOnce() throws {
        let memory = InMemoryBroker()
        let handler = OutcomeHandler(broker: memory, backend: FailingOnceBackend(memory), logger: Logger(label: "test"))
        handler.start()
        defer { handler.stop() }
        handler.submitAndSettle(try fetchedSettlement(memory, id: "i-3"))
        #expect(handler.flush(timeout: 10))
        #expect(memory.result("i-3")?.status == .success)
        #expect(memory.unackedCount == 0)
    }

    @Test func settlementsFromManyThreadsAreAllCarriedOut() throws {
        let memory = InMemoryBroker()
        let handler = OutcomeHandler(broker: memory, backend: memory, logger: Logger(label: "test"))
        handler.start()
        defer { handler.stop() }
        let settlements = try (0..<200).map { try fetchedSettlement(memory, id: "m-\($0)") }
        let threads = (0..<4).map { t in
            startThread(name: "test-submitter") {
                for i in stride(from: t, to: settlements.count, by: 4) { handler.submitAndSettle(settlements[i]) }
            }
        }
        for thread in threads { thread.join() }
        #expect(handler.flush(timeout: 10))
        #expect((0..<200).allSatisfy { memory.result("m-\($0)")?.status == .success })
        #expect(memory.unackedCount == 0)
    }
}
