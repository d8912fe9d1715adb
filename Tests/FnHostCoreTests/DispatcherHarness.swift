import CeleryProtocol
import FnHostCore
import Foundation
import Testing

/// A closed door tasks wait behind until the test opens it.
final class Gate: @unchecked Sendable {
    private let lock = ConditionLock()
    private var isOpen = false
    init(open: Bool = false) { isOpen = open }
    func open() { lock.withLock { isOpen = true; lock.broadcast() } }
    func wait() { lock.withLock { while !isOpen { lock.wait() } } }
}

/// A count several threads add to.
final class Counter: @unchecked Sendable {
    private let lock = ConditionLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Runs each task inline on a background thread with a closure chosen by task name, and
/// records what ran: start order, and how many ran at once (per function and in all).
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    typealias Handler = @Sendable (TaskRequest) -> TaskOutcome
    private let lock = ConditionLock()
    private let handlers: [String: Handler]
    private var _started: [(id: String, name: String, retries: Int, at: Double)] = []
    private var running: [String: Int] = [:]
    private var maxRunning: [String: Int] = [:]
    private var total = 0
    private var _maxTotal = 0

    init(_ handlers: [String: Handler]) { self.handlers = handlers }

    func execute(_ request: TaskRequest, completion: @escaping @Sendable (TaskOutcome) -> Void) {
        let name = request.function.name
        lock.withLock {
            _started.append((request.id, name, request.message.retries, CeleryTime.now()))
            running[name, default: 0] += 1
            maxRunning[name] = max(maxRunning[name] ?? 0, running[name]!)
            total += 1
            _maxTotal = max(_maxTotal, total)
            lock.broadcast()
        }
        let handler = handlers[name]
        Thread.detachNewThread { [self] in
            let outcome = handler?(request) ?? .failure(TaskException(pluginType: "RuntimeError", message: "no handler for \(name)"), traceback: nil)
            lock.withLock {
                running[name, default: 1] -= 1
                total -= 1
                lock.broadcast()
            }
            completion(outcome)
        }
    }

    var started: [(id: String, name: String, retries: Int, at: Double)] { lock.withLock { _started } }
    var startedIds: [String] { started.map(\.id) }
    var maxTotal: Int { lock.withLock { _maxTotal } }
    func maxRunning(_ name: String) -> Int { lock.withLock { maxRunning[name] ?? 0 } }
    func running(_ name: String) -> Int { lock.withLock { running[name] ?? 0 } }
    var runningTotal: Int { lock.withLock { total } }
}

/// A broker that records every fetch plan it is asked for, over an `InMemoryBroker`.
final class RecordingBroker: Broker, @unchecked Sendable {
    let inner: InMemoryBroker
    private let lock = ConditionLock()
    private var _plans: [FetchPlan] = []
    init(_ inner: InMemoryBroker) { self.inner = inner }
    var plans: [FetchPlan] { lock.withLock { _plans } }
    func declare(queues: [String]) throws { try inner.declare(queues: queues) }
    func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery] {
        lock.withLock { _plans.append(plan) }
        return try inner.fetch(plan, timeout: timeout)
    }
    func ack(_ deliveries: [Delivery]) throws { try inner.ack(deliveries) }
    func requeue(_ deliveries: [Delivery]) throws { try inner.requeue(deliveries) }
    func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws { try inner.delay(deliveries) }
    func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws { try inner.deadLetter(deliveries) }
    func publish(_ message: TaskMessage, toQueue queue: String) throws { try inner.publish(message, toQueue: queue) }
    func close() { inner.close() }
}

/// A dispatcher wired to an in-memory broker and backend, an outcome handler, a consumer and
/// an inline executor, as the host wires them.
/// Holds the `succeeded` event: it comes between freeing the task's slot and submitting its
/// settlement, the window a warm shutdown's flush and a visibility sweep must not fall into.
final class HeldAtSuccess: TaskObserver, @unchecked Sendable {
    let gate = Gate()
    let reached = Gate()
    func observe(_ event: TaskEvent) {
        if case .succeeded = event {
            reached.open()
            gate.wait()
        }
    }
}

final class TestHost: @unchecked Sendable {
    let broker = InMemoryBroker()
    let recorder: RecordingBroker
    let executor: InlineExecutor
    let outcomes: OutcomeHandler
    let dispatcher: Dispatcher
    let consumer: Consumer

    /// `functions`: the options JSON of each registered function by name (queue = name unless set).
    init(functions: [String: String], concurrency: Int, prefetchMultiplier: Int = 4,
         handlers: [String: InlineExecutor.Handler], signing: (any MessageSigning)? = nil) throws {
        var registry = TaskRegistry()
        let registered = try functions.map { RegisteredFunction(name: $0.key, kind: .task, options: try options($0.value), plugin: "libtest.so") }
        registry.add(plugin: "libtest.so", functions: registered)
        recorder = RecordingBroker(broker)
        executor = InlineExecutor(handlers)
        outcomes = OutcomeHandler(broker: recorder, backend: broker, logger: quietLogger(), signing: signing)
        dispatcher = Dispatcher(registry: registry, configuration: .init(concurrency: concurrency, prefetchMultiplier: prefetchMultiplier),
                                executor: executor, outcomes: outcomes, logger: quietLogger(), signing: signing)
        consumer = Consumer(broker: recorder, dispatcher: dispatcher, logger: quietLogger(), pollTimeout: 0.05)
    }

    func start() {
        outcomes.start()
        consumer.start()
    }

    /// A started host of one function, `work`, whose one task `taskId` has succeeded and is
    /// held there: no longer running, its settlement not submitted until `held.gate` opens.
    static func heldAtSuccess(taskId: String) throws -> (host: TestHost, held: HeldAtSuccess) {
        let host = try TestHost(functions: ["work": "{}"], concurrency: 1, handlers: ["work": succeed])
        let held = HeldAtSuccess()
        host.dispatcher.observer = held
        host.send(try taskMessage(id: taskId, task: "work"))
        host.start()
        held.reached.wait()
        #expect(host.dispatcher.runningCount == 0)
        return (host, held)
    }

    /// Lets the held task's settlement through; whether it was then carried out (idle, flushed,
    /// nothing unacknowledged) within 10 s.
    func settle(_ held: HeldAtSuccess) -> Bool {
        held.gate.open()
        return dispatcher.waitUntilIdle(timeout: 10) && outcomes.flush(timeout: 10) && broker.unackedCount == 0
    }

    /// Stops fetching, gives back what has not started, lets running tasks end, carries out every settlement, stops.
    func stop() {
        consumer.stop()
        try? broker.requeue(dispatcher.drain())
        _ = dispatcher.waitUntilIdle(timeout: 10)
        outcomes.flush(timeout: 10)
        outcomes.stop()
        broker.close()
    }

    func send(_ message: TaskMessage, to queue: String? = nil) { broker.send(message, to: queue ?? message.task) }

    /// Waits for every settlement submitted so far to be carried out.
    func settle() { outcomes.flush(timeout: 10) }
}

/// Polls `condition` until it holds, up to `timeout` seconds (a bound, never a measurement).
func eventually(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + timeout
    while !condition() {
        if monotonicNow() > deadline { return false }
        sleepSeconds(0.002)
    }
    return true
}

/// `JSON` of a stored result's `result` field.
func resultValue(_ meta: ResultMeta?) -> JSON? {
    meta.flatMap { try? JSONParser.parse($0.resultJSON) }
}

let succeed: InlineExecutor.Handler = { _ in .success(resultJSON: Array("\"ok\"".utf8)) }
