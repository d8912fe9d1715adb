import CeleryProtocol
import FnHostCore
import Testing

/// `Dispatcher.replaceRegistry`: a hot reload swaps what the dispatcher serves without losing
/// or re-running anything.
@Suite struct DispatcherReloadTests {
    func registry(_ plugin: String, _ functions: [String: String]) throws -> TaskRegistry {
        var registry = TaskRegistry()
        registry.add(plugin: plugin, functions: try functions.map { RegisteredFunction(name: $0.key, kind: .task, options: try options($0.value), plugin: plugin) })
        return registry
    }

    @Test func reservedDeliveriesOfARemovedFunctionGoBackToTheirQueueAndRunningOnesFinish() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["work": "{}", "other": "{}"], concurrency: 1, prefetchMultiplier: 4, handlers: [
            "work": { _ in gate.wait(); return .success(resultJSON: Array("1".utf8)) },
            "other": succeed,
        ])
        for i in 0..<4 { host.send(try taskMessage(id: "w-\(i)", task: "work")) }
        host.start()
        defer { gate.open(); host.stop() }
        // One running, three reserved (held unacknowledged).
        #expect(eventually { host.broker.unackedCount == 4 && host.executor.runningTotal == 1 })
        let running = try #require(host.executor.startedIds.first)

        let queues = host.dispatcher.replaceRegistry(try registry("libtest.so", ["other": "{}"]))
        #expect(queues == ["other"])
        host.settle()
        // The three not started are back in their queue, not acknowledged, not run, not failed.
        #expect(eventually { host.broker.length(of: "work") == 3 })
        #expect(host.executor.startedIds == [running])

        // The running one finishes and is settled as usual.
        gate.open()
        #expect(host.broker.waitForResult(running, timeout: 10)?.status == .success)
        host.settle()
        #expect(eventually { host.broker.unackedCount == 0 })
        #expect(host.executor.startedIds == [running])
        // And its queue is no longer consumed.
        #expect(host.dispatcher.fetchPlan()?.entries.map(\.queue) == ["other"])
        #expect(host.broker.length(of: "work") == 3)
    }

    @Test func reservedDeliveriesRunAsTheFunctionOfTheNewRegistry() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, prefetchMultiplier: 4, handlers: [
            "work": { request in
                if request.function.plugin == "libtest.so" { gate.wait() }
                return .success(resultJSON: Array("\"\(request.function.plugin)\"".utf8))
            },
        ])
        for i in 0..<3 { host.send(try taskMessage(id: "r-\(i)", task: "work")) }
        host.start()
        defer { gate.open(); host.stop() }
        #expect(eventually { host.broker.unackedCount == 3 && host.executor.runningTotal == 1 })
        let first = try #require(host.executor.startedIds.first)

        host.dispatcher.replaceRegistry(try registry("libnew.so", ["work": "{}"]))
        gate.open()
        #expect(host.broker.waitForResult(first, timeout: 10).map(resultValue) == .some("libtest.so"))
        for id in ["r-0", "r-1", "r-2"] where id != first {
            #expect(host.broker.waitForResult(id, timeout: 10).map(resultValue) == .some("libnew.so"))
        }
        host.settle()
        #expect(host.executor.startedIds.count == 3)
        #expect(host.broker.unackedCount == 0)
    }

    @Test func newFunctionsQueuesAreConsumedAfterTheSwap() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 2, handlers: ["work": succeed, "added": succeed])
        host.send(try taskMessage(id: "a-1", task: "added"))
        host.start()
        defer { host.stop() }
        #expect(host.dispatcher.queues == ["work"])
        host.dispatcher.replaceRegistry(try registry("libtest.so", ["work": "{}", "added": "{\"queue\": \"extra\"}"]))
        #expect(host.dispatcher.queues == ["extra", "work"])
        host.send(try taskMessage(id: "a-2", task: "added"), to: "extra")
        #expect(host.broker.waitForResult("a-2", timeout: 10)?.status == .success)
        // Sent before to a queue nobody consumes: still there, untouched.
        #expect(host.broker.length(of: "added") == 1)
    }
}

@Suite struct DispatcherReloadRaceTests {
    @Test func aDeliveryFetchedFromAQueueNoLongerConsumedGoesBackUnrun() throws {
        let host = try TestHost(functions: ["work": "{}", "other": "{}"], concurrency: 1, handlers: ["work": succeed, "other": succeed])
        host.outcomes.start()
        defer { host.stop() }
        // A fetch planned before the reload returns after it.
        host.send(try taskMessage(id: "late", task: "work"))
        let plan = FetchPlan(entries: [.init(queue: "work", limit: 1)], total: 1)
        var other = TaskRegistry()
        other.add(plugin: "libtest.so", functions: [RegisteredFunction(name: "other", kind: .task, options: TaskOptions(), plugin: "libtest.so")])
        host.dispatcher.replaceRegistry(other)
        let fetched = try host.broker.fetch(plan, timeout: 1)
        #expect(fetched.count == 1)
        host.dispatcher.received(fetched)
        host.settle()
        #expect(host.broker.length(of: "work") == 1)
        #expect(host.broker.unackedCount == 0)
        #expect(host.executor.started.isEmpty)
        #expect(host.broker.waitForResult("late", timeout: 0.2) == nil)
    }
}

@Suite struct DispatcherReloadEtaTests {
    @Test func aTaskWaitingForItsEtaWhoseFunctionWasRemovedGoesBackToItsQueueWhenDue() throws {
        let host = try TestHost(functions: ["work": "{}", "other": "{}"], concurrency: 1, handlers: ["work": succeed, "other": succeed])
        let eta = CeleryTime.isoformat(CeleryTime.now() + 0.5)
        host.send(try taskMessage(id: "later", task: "work", ["eta": .string(eta)]))
        host.start()
        defer { host.stop() }
        #expect(eventually { host.broker.unackedCount == 1 && host.broker.length(of: "work") == 0 })
        var other = TaskRegistry()
        other.add(plugin: "libtest.so", functions: [RegisteredFunction(name: "other", kind: .task, options: TaskOptions(), plugin: "libtest.so")])
        host.dispatcher.replaceRegistry(other)
        // Due: no function any more, so back to its queue, unrun, without a result.
        #expect(eventually { host.broker.length(of: "work") == 1 && host.broker.unackedCount == 0 })
        #expect(host.executor.started.isEmpty)
        #expect(host.broker.waitForResult("later", timeout: 0.1) == nil)
    }

    @Test func aTaskWaitingForItsEtaRunsAsTheFunctionOfTheNewRegistry() throws {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: [
            "work": { request in .success(resultJSON: Array("\"\(request.function.plugin)\"".utf8)) },
        ])
        let eta = CeleryTime.isoformat(CeleryTime.now() + 0.5)
        host.send(try taskMessage(id: "later", task: "work", ["eta": .string(eta)]))
        host.start()
        defer { host.stop() }
        #expect(eventually { host.broker.unackedCount == 1 && host.broker.length(of: "work") == 0 })
        var next = TaskRegistry()
        next.add(plugin: "libnew.so", functions: [RegisteredFunction(name: "work", kind: .task, options: TaskOptions(), plugin: "libnew.so")])
        host.dispatcher.replaceRegistry(next)
        #expect(host.broker.waitForResult("later", timeout: 10).map(resultValue) == .some("libnew.so"))
    }
}
