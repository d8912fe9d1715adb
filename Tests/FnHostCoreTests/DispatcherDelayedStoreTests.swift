import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherDelayedStoreTests {
    @Test func aFarEtaGoesToTheDelayedStoreAcknowledgedNotHeld() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        host.start()
        defer { host.stop() }
        let eta = CeleryTime.now() + 3600
        host.send(try taskMessage(id: "far", task: "work", ["eta": .string(CeleryTime.isoformat(eta))]))
        host.send(try taskMessage(id: "marker", task: "work"))
        #expect(host.broker.waitForResult("marker", timeout: 10)?.status == .success)
        host.settle()
        // Acknowledged and stored durably, not held: nothing for a visibility timeout to restore.
        #expect(host.broker.delayedCount == 1)
        #expect(host.broker.unackedCount == 0)
        #expect(!host.executor.startedIds.contains("far"))

        // It goes back to its queue once due, and only once.
        #expect(host.broker.moveDueDelayed(now: eta - 1) == 0)
        host.stop()
        // The stored ETA went through ISO-8601 (microseconds): compare a millisecond later.
        #expect(host.broker.moveDueDelayed(now: eta + 0.001) == 1)
        #expect(host.broker.moveDueDelayed(now: eta + 0.001) == 0)
        #expect(host.broker.length(of: "work") == 1)
        #expect(host.broker.delayedCount == 0)
    }
}
