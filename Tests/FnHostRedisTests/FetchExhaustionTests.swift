import CeleryProtocol
import FnHostCore
@testable import FnHostRedis
import Testing

/// When a fetch counts as having found every queue empty, so that the next fetch waits on the
/// doorbells instead of running the fetch script over empty lists again.
@Suite struct FetchExhaustionTests {
    private func taken(_ queues: [String]) -> [Delivery] {
        queues.map { Delivery(queue: $0, tag: "t", source: $0, payload: [], message: .failure(MessageDecodingError(.undecodableBody, "test"))) }
    }

    private let plan = FetchPlan(entries: [.init(queue: "a", limit: 4), .init(queue: "b", limit: 2)], total: 6)

    @Test func nothingTakenIsEmpty() {
        #expect(RedisBroker.foundEveryQueueEmpty(plan, taken: []))
    }

    @Test func lessThanEveryLimitIsEmpty() {
        #expect(RedisBroker.foundEveryQueueEmpty(plan, taken: taken(["a", "a", "b"])))
    }

    @Test func aQueueAtItsLimitMayHoldMore() {
        #expect(!RedisBroker.foundEveryQueueEmpty(plan, taken: taken(["b", "b"])))
        #expect(!RedisBroker.foundEveryQueueEmpty(plan, taken: taken(["a", "a", "a", "a"])))
    }

    @Test func theTotalReachedMayLeaveMore() {
        let small = FetchPlan(entries: [.init(queue: "a", limit: 4), .init(queue: "b", limit: 4)], total: 2)
        #expect(!RedisBroker.foundEveryQueueEmpty(small, taken: taken(["a", "b"])))
    }
}
