import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherDrainTests {
    @Test func drainReturnsUnstartedDeliveriesAndRequeuePutsThemBack() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, prefetchMultiplier: 4, handlers: [
            "work": { _ in gate.wait(); return .success(resultJSON: Array("1".utf8)) },
        ])
        for i in 0..<5 { host.send(try taskMessage(id: "d-\(i)", task: "work")) }
        host.start()
        defer { gate.open(); host.stop() }

        // 1 running + 3 reserved fetched; 1 left in the queue.
        #expect(eventually { host.broker.unackedCount == 4 && host.executor.runningTotal == 1 })
        host.consumer.stop()
        #expect(host.broker.length(of: "work") == 1)

        let back = host.dispatcher.drain()
        #expect(back.count == 3)
        #expect(Set(back.map(\.tag)).count == 3)
        #expect(host.dispatcher.fetchPlan() == nil)
        try host.broker.requeue(back)
        #expect(host.broker.length(of: "work") == 4)
        #expect(host.broker.unackedCount == 1)

        // The running task still finishes and is settled; nothing else starts.
        gate.open()
        #expect(host.dispatcher.waitUntilIdle(timeout: 10))
        let ran = try #require(host.executor.startedIds.first)
        #expect(host.broker.waitForResult(ran, timeout: 10)?.status == .success)
        host.settle()
        #expect(host.executor.startedIds == [ran])
        #expect(host.broker.unackedCount == 0)
        #expect(host.broker.length(of: "work") == 4)
    }

    @Test func notIdleUntilAFinishedTasksSettlementIsSubmitted() throws {
        let (host, held) = try TestHost.heldAtSuccess(taskId: "w-1")
        defer { held.gate.open(); host.stop() }

        // The task no longer runs, but its settlement is not submitted: a flush now would miss it.
        #expect(!host.dispatcher.waitUntilIdle(timeout: 0.2))
        #expect(host.settle(held))
        #expect(host.broker.result("w-1")?.status == .success)
    }

    @Test func drainAlsoReturnsDeliveriesWaitingForTheirEta() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        // Within the delayed-store horizon (5 s), so held in memory, unacknowledged.
        let eta = CeleryTime.isoformat(CeleryTime.now() + 4)
        host.send(try taskMessage(id: "later", task: "work", ["eta": .string(eta)]))
        host.start()
        defer { host.stop() }

        #expect(eventually { host.broker.unackedCount == 1 })
        host.consumer.stop()
        let back = host.dispatcher.drain()
        #expect(back.count == 1)
        try host.broker.requeue(back)
        #expect(host.broker.length(of: "work") == 1)
        #expect(host.broker.unackedCount == 0)
        #expect(host.executor.started.isEmpty)
    }
}

@Suite struct DispatcherColdShutdownTests {
    @Test func aTaskThatFinishesDuringColdShutdownIsSettledNotRequeued() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: [
            "work": { _ in gate.wait(); return .success(resultJSON: Array("7".utf8)) },
        ])
        host.send(try taskMessage(id: "finishes", task: "work"))
        host.start()
        defer { gate.open(); host.stop() }
        #expect(eventually { host.executor.runningTotal == 1 })
        host.consumer.stop()
        _ = host.dispatcher.drain()
        #expect(host.dispatcher.abandonRunning() == 1)
        gate.open()
        #expect(host.broker.waitForResult("finishes", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.broker.length(of: "work") == 0)
        #expect(host.broker.unackedCount == 0)
    }

    @Test func aTaskWhoseWorkerIsKilledDuringColdShutdownIsRequeued() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: [
            "work": { _ in gate.wait(); return .workerLost(how: "signal 9 (SIGKILL)") },
        ])
        host.send(try taskMessage(id: "killed", task: "work"))
        host.start()
        defer { gate.open(); host.stop() }
        #expect(eventually { host.executor.runningTotal == 1 })
        host.consumer.stop()
        _ = host.dispatcher.drain()
        #expect(host.dispatcher.abandonRunning() == 1)
        gate.open()
        #expect(eventually { host.executor.runningTotal == 0 })
        host.settle()
        #expect(host.broker.result("killed") == nil)
        #expect(host.broker.length(of: "work") == 1)
        #expect(host.broker.unackedCount == 0)
    }
}
