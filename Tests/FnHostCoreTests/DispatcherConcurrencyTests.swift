import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherConcurrencyTests {
    @Test func functionConcurrencyOptionIsNeverExceeded() throws {
        let gate = Gate()
        let handler: InlineExecutor.Handler = { _ in gate.wait(); return .success(resultJSON: Array("null".utf8)) }
        let host = try TestHost(functions: ["slow": #"{"concurrency": 2}"#, "fast": "{}"], concurrency: 4,
                                handlers: ["slow": handler, "fast": handler])
        for i in 0..<8 {
            host.send(try taskMessage(id: "slow-\(i)", task: "slow"))
            host.send(try taskMessage(id: "fast-\(i)", task: "fast"))
        }
        host.start()
        defer { gate.open(); host.stop() }

        // With every task held, the slots fill up: 2 of `slow` (its own limit), the rest `fast`.
        #expect(eventually { host.executor.running("slow") == 2 && host.executor.runningTotal == 4 })
        #expect(host.dispatcher.runningCount == 4)
        gate.open()
        for i in 0..<8 {
            #expect(host.broker.waitForResult("slow-\(i)", timeout: 10)?.status == .success)
            #expect(host.broker.waitForResult("fast-\(i)", timeout: 10)?.status == .success)
        }
        #expect(host.executor.maxRunning("slow") == 2)
        #expect(host.executor.maxTotal == 4)
    }

    /// A function that held its whole prefetch window had its queue left out of the fetch plan:
    /// freeing a place in it tells the consumer's broker to plan again; other finishes do not.
    @Test func aFullFunctionFreeingAPlaceWidensTheFetchPlan() throws {
        let host = try TestHost(functions: ["limited": #"{"concurrency": 1}"#, "other": "{}"], concurrency: 2,
                                prefetchMultiplier: 1, handlers: ["limited": succeed, "other": succeed])
        let widened = Counter()
        host.dispatcher.onQueueRoomFreed = { widened.increment() }
        for i in 0..<3 { host.send(try taskMessage(id: "limited-\(i)", task: "limited")) }
        host.start()
        defer { host.stop() }
        for i in 0..<3 { #expect(host.broker.waitForResult("limited-\(i)", timeout: 10)?.status == .success) }
        // Each `limited` task held its window of one (concurrency 1 x prefetch 1).
        #expect(eventually { widened.value == 3 })
        host.send(try taskMessage(id: "other-0", task: "other"))
        #expect(host.broker.waitForResult("other-0", timeout: 10)?.status == .success)
        // `other` holds one of its two places: its queue was in every plan.
        #expect(widened.value == 3)
    }

    @Test func globalConcurrencyIsNeverExceeded() throws {
        let gate = Gate()
        let handler: InlineExecutor.Handler = { _ in gate.wait(); return .success(resultJSON: Array("null".utf8)) }
        let host = try TestHost(functions: ["a": "{}", "b": #"{"concurrency": 10}"#], concurrency: 3, handlers: ["a": handler, "b": handler])
        for i in 0..<6 {
            host.send(try taskMessage(id: "a-\(i)", task: "a"))
            host.send(try taskMessage(id: "b-\(i)", task: "b"))
        }
        host.start()
        defer { gate.open(); host.stop() }

        #expect(eventually { host.executor.runningTotal == 3 })
        gate.open()
        for id in (0..<6).flatMap({ ["a-\($0)", "b-\($0)"] }) {
            #expect(host.broker.waitForResult(id, timeout: 10)?.status == .success)
        }
        #expect(host.executor.maxTotal == 3)
        #expect(host.executor.maxRunning("b") <= 3)
    }

    @Test func fetchPlansNeverAskForMoreThanConcurrencyTimesPrefetch() throws {
        let gate = Gate()
        let handler: InlineExecutor.Handler = { _ in gate.wait(); return .success(resultJSON: Array("null".utf8)) }
        let host = try TestHost(functions: ["work": "{}"], concurrency: 2, prefetchMultiplier: 3, handlers: ["work": handler])
        for i in 0..<30 { host.send(try taskMessage(id: "w-\(i)", task: "work")) }
        host.start()
        defer { gate.open(); host.stop() }

        // 2 running + 4 reserved = 2 x 3 held; nothing more is fetched while they are held.
        #expect(eventually { host.broker.unackedCount == 6 && host.executor.runningTotal == 2 })
        #expect(host.dispatcher.fetchPlan() == nil)
        #expect(host.broker.length(of: "work") == 24)
        gate.open()
        for i in 0..<30 { #expect(host.broker.waitForResult("w-\(i)", timeout: 10)?.status == .success) }
        let plans = host.recorder.plans
        #expect(!plans.isEmpty)
        for plan in plans {
            #expect(plan.total <= 6)
            #expect(plan.entries.allSatisfy { $0.limit <= 6 })
        }
        #expect(host.executor.maxTotal == 2)
    }

    @Test func fetchPlanCountsHeldDeliveriesPerFunction() throws {
        let gate = Gate()
        let handler: InlineExecutor.Handler = { _ in gate.wait(); return .success(resultJSON: Array("null".utf8)) }
        var registry = TaskRegistry()
        registry.add(plugin: "libp.so", functions: [
            RegisteredFunction(name: "limited", kind: .task, options: try options(#"{"concurrency": 2}"#), plugin: "libp.so"),
            RegisteredFunction(name: "open", kind: .task, options: TaskOptions(), plugin: "libp.so"),
        ])
        let broker = InMemoryBroker()
        let executor = InlineExecutor(["limited": handler, "open": handler])
        let outcomes = OutcomeHandler(broker: broker, backend: broker, logger: quietLogger())
        let dispatcher = Dispatcher(registry: registry, configuration: .init(concurrency: 3, prefetchMultiplier: 4, sharedQueues: ["celery"]),
                                    executor: executor, outcomes: outcomes, logger: quietLogger())
        var expectedStarts = 8
        defer {
            gate.open()
            _ = eventually { executor.started.count == expectedStarts && executor.runningTotal == 0 && dispatcher.runningCount == 0 }
        }

        #expect(dispatcher.queues == ["celery", "limited", "open"])
        let empty = try #require(dispatcher.fetchPlan())
        #expect(empty.total == 12)
        #expect(Dictionary(uniqueKeysWithValues: empty.entries.map { ($0.queue, $0.limit) }) == ["limited": 8, "open": 12, "celery": 12])

        // Hold 8 of `limited` (2 running, 6 reserved): its queue drops out, the total shrinks.
        let deliveries = try (0..<8).map { i in delivery(of: try taskMessage(id: "l-\(i)", task: "limited"), queue: "limited", tag: "t\(i)") }
        dispatcher.received(deliveries)
        #expect(eventually { executor.runningTotal == 2 })
        let held = try #require(dispatcher.fetchPlan())
        #expect(held.total == 4)
        #expect(Dictionary(uniqueKeysWithValues: held.entries.map { ($0.queue, $0.limit) }) == ["open": 4, "celery": 4])

        // 4 more of `open` fill the rest: nothing may be fetched.
        expectedStarts = 12
        dispatcher.received(try (0..<4).map { i in delivery(of: try taskMessage(id: "o-\(i)", task: "open"), queue: "open", tag: "o\(i)") })
        #expect(dispatcher.fetchPlan() == nil)
        #expect(executor.maxTotal <= 3)
        #expect(executor.maxRunning("limited") <= 2)
    }
}
