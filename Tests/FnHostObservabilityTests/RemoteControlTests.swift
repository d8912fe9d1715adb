import CeleryProtocol
import FnHostCore
import FnHostObservability
import Logging
import Testing

/// A transport that records what is published and replied, and hands out queued requests.
final class RecordingTransport: MonitoringTransport, @unchecked Sendable {
    private let lock = ConditionLock()
    private var _published: [(exchange: String, message: MonitoringMessage)] = []
    private var _replies: [(exchange: String, message: MonitoringMessage)] = []
    private var inbox: [MonitoringMessage] = []

    func publish(_ messages: [MonitoringMessage], toFanout exchange: String) throws {
        lock.withLock { _published += messages.map { (exchange, $0) }; lock.broadcast() }
    }
    func reply(_ message: MonitoringMessage, throughDirect exchange: String) throws {
        lock.withLock { _replies.append((exchange, message)); lock.broadcast() }
    }
    func receive(fromFanout exchange: String, queue: String, timeout: Double) throws -> [MonitoringMessage] {
        lock.withLock {
            if inbox.isEmpty { _ = lock.wait(until: monotonicNow() + timeout) }
            defer { inbox = [] }
            return inbox
        }
    }
    func close() {}

    func send(_ body: JSON, clock: Int64 = 100) {
        lock.withLock { inbox.append(MonitoringMessage(routingKey: "", headers: ["clock": .int(clock)], body: body)); lock.broadcast() }
    }
    var published: [(exchange: String, message: MonitoringMessage)] { lock.withLock { _published } }
    var replies: [(exchange: String, message: MonitoringMessage)] { lock.withLock { _replies } }
}

final class NoExecutor: TaskExecutor, @unchecked Sendable {
    func execute(_ request: TaskRequest, completion: @escaping @Sendable (TaskOutcome) -> Void) {}
}

final class NullBroker: Broker, @unchecked Sendable {
    func declare(queues: [String]) throws {}
    func fetch(_ plan: FetchPlan, timeout: Double) throws -> [Delivery] { [] }
    func ack(_ deliveries: [Delivery]) throws {}
    func requeue(_ deliveries: [Delivery]) throws {}
    func delay(_ deliveries: [(delivery: Delivery, until: Double)]) throws {}
    func deadLetter(_ deliveries: [(delivery: Delivery, reason: String)]) throws {}
    func publish(_ message: TaskMessage, toQueue queue: String) throws {}
    func close() {}
}

func eventually(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + timeout
    while !condition() {
        if monotonicNow() > deadline { return false }
        sleepSeconds(0.002)
    }
    return true
}

@Suite struct RemoteControlTests {
    let transport = RecordingTransport()
    let clock = LamportClock()
    let control: RemoteControl
    let events: EventDispatcher

    init() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var registry = TaskRegistry()
        var options = TaskOptions()
        options.rateLimit = "5/s"
        _ = registry.add(plugin: "libt.so", functions: [
            RegisteredFunction(name: "t.b", kind: .task, options: options, plugin: "libt.so"),
            RegisteredFunction(name: "t.a", kind: .task, options: TaskOptions(), plugin: "libt.so"),
        ])
        let dispatcher = Dispatcher(registry: registry, configuration: .init(concurrency: 2), executor: NoExecutor(),
                                    outcomes: OutcomeHandler(broker: NullBroker(), backend: nil, logger: logger), logger: logger)
        events = EventDispatcher(transport: transport, hostname: "w@h", clock: clock, taskEvents: false, logger: logger) { .init(active: 0, processed: 0) }
        control = RemoteControl(transport: transport, context: .init(
            hostname: "w@h", dispatcher: dispatcher, registry: registry, events: events, inspection: nil,
            poolImplementation: "fnhost:prefork", maxTasksPerChild: nil, configuration: ["broker_url": "redis://:***@x:1/0"],
            workerPids: { [] }, workerPid: { _ in nil }, declareQueue: { _ in }, resizePool: { _ in }, shutdown: {}), clock: clock, logger: logger)
    }

    func request(_ method: String, _ arguments: JSONObject = [:], destination: JSON = nil, ticket: String = "t-1") -> JSON {
        .object(["method": .string(method), "arguments": .object(arguments), "destination": destination, "pattern": nil, "matcher": nil,
                 "ticket": .string(ticket), "reply_to": .object(["exchange": "reply.celery.pidbox", "routing_key": "oid-1"])])
    }

    func reply(to body: JSON) throws -> MonitoringMessage {
        let before = transport.replies.count
        control.start()
        defer { control.stop() }
        transport.send(body)
        #expect(eventually { transport.replies.count > before })
        return try #require(transport.replies.last?.message)
    }

    @Test func pingIsAnsweredToTheReplyQueueWithTicketAndClock() throws {
        let r = try reply(to: request("ping"))
        #expect(transport.replies.last?.exchange == "reply.celery.pidbox")
        #expect(r.routingKey == "oid-1")
        #expect(r.body == .object(["w@h": .object(["ok": "pong"])]))
        #expect(r.headers["ticket"] == "t-1")
        // The request's clock (100) moved ours past it.
        #expect((r.headers["clock"]?.intValue ?? 0) > 100)
    }

    @Test func registeredListsNamesSortedWithRequestedAttributes() throws {
        #expect(try reply(to: request("registered")).body == .object(["w@h": ["t.a", "t.b"]]))
        #expect(try reply(to: request("registered", ["taskinfoitems": ["rate_limit"]])).body == .object(["w@h": ["t.a", "t.b [rate_limit=5/s]"]]))
    }

    @Test func requestsForOtherNodesAreIgnored() throws {
        control.start()
        transport.send(request("ping", destination: ["other@h"], ticket: "not-mine"))
        transport.send(request("ping", destination: ["w@h"], ticket: "mine"))
        #expect(eventually { transport.replies.count == 1 })
        control.stop()
        #expect(transport.replies.map { $0.message.headers["ticket"] } == ["mine"])
    }

    @Test func unknownCommandsAndBadArgumentsAreAnsweredWithAnError() throws {
        #expect(try reply(to: request("frobnicate")).body == .object(["w@h": .object(["error": "unknown command 'frobnicate'"])]))
        #expect(try reply(to: request("rate_limit", ["task_name": "t.zzz", "rate_limit": "1/s"])).body
                == .object(["w@h": .object(["error": "unknown task"])]))
    }

    @Test func enableAndDisableEventsToggleTaskEvents() throws {
        #expect(try reply(to: request("enable_events")).body == .object(["w@h": .object(["ok": "task events enabled"])]))
        #expect(events.taskEventsEnabled)
        #expect(try reply(to: request("disable_events")).body == .object(["w@h": .object(["ok": "task events disabled"])]))
        #expect(!events.taskEventsEnabled)
    }

    @Test func revokeFlagsIdsAsCeleryWordsIt() throws {
        #expect(try reply(to: request("revoke", ["task_id": "abc"])).body == .object(["w@h": .object(["ok": "tasks {'abc'} flagged as revoked"])]))
        #expect(try reply(to: request("revoked")).body == .object(["w@h": ["abc"]]))
    }
}

@Suite struct EventDispatcherTests {
    @Test func workerEventsCarryEveryFieldFlowerReads() throws {
        let transport = RecordingTransport()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let events = EventDispatcher(transport: transport, hostname: "w@h", clock: LamportClock(), taskEvents: false,
                                     heartbeatInterval: 60, logger: logger) { .init(active: 1, processed: 7) }
        events.start()
        events.heartbeat(freq: 5)
        events.stop()
        #expect(transport.published.map(\.message.body["type"]) == ["worker-online", "worker-heartbeat", "worker-offline"])
        #expect(transport.published.allSatisfy { $0.exchange == "celeryev" })
        let beat = try #require(transport.published.dropFirst().first?.message)
        #expect(beat.routingKey == "worker.heartbeat")
        #expect(beat.headers == ["hostname": "w@h"])
        for key in ["hostname", "utcoffset", "pid", "clock", "timestamp", "type", "freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"] {
            #expect(beat.body[key] != nil, "missing \(key)")
        }
        #expect(beat.body["freq"] == 5.0)
        #expect(beat.body["active"] == 1 && beat.body["processed"] == 7)
        let clocks = transport.published.compactMap { $0.message.body["clock"]?.intValue }
        #expect(clocks == clocks.sorted() && Set(clocks).count == 3)
    }
}
