import CeleryProtocol
import FnHostCore
import Logging
import Testing

/// The outcome handler's chord step against a backend with Redis' counting semantics.
@Suite struct OutcomeHandlerChordTests {
    let ids = SequentialIds()

    func setUp() -> (InMemoryBroker, InMemoryChordBackend, OutcomeHandler) {
        let memory = InMemoryBroker()
        let chords = InMemoryChordBackend(results: memory)
        let ids = self.ids
        let canvas = Canvas(router: TaskRouter(functionQueues: ["math.xsum": "math.xsum"]), origin: "fnhost@test",
                            supportsChords: true, makeId: { ids.make() })
        let handler = OutcomeHandler(broker: memory, backend: chords, logger: quietLogger(), canvas: canvas)
        return (memory, chords, handler)
    }

    /// The settlement of header member `index` of chord `g-1` (size `size`) finishing with `outcome`.
    func part(_ index: Int, canvas: Canvas, outcome: TaskOutcome) throws -> Settlement {
        let body = Signature(task: "math.xsum", options: ["task_id": "body-1", "group_id": "g-1"])
        let embed = CanvasEmbed(chord: body)
        let id = "h-\(index)"
        let headers: JSONObject = ["lang": "py", "task": "math.add", "id": .string(id), "retries": 0, "root_id": .string(id),
                                   "group": "g-1", "group_index": .int(Int64(index)), "ignore_result": false]
        let message = try TaskMessage(headers: headers, contentType: "application/json", contentEncoding: "utf-8",
                                      body: JSONWriter.bytes(.array([[1, 1], .object([:]), embed.json])), correlationId: id)
        let request = TaskRequest(delivery: delivery(of: message, queue: "math.add", tag: "tag-\(index)"), message: message,
                                  function: RegisteredFunction(name: "math.add", kind: .task, options: TaskOptions(), plugin: "libmath.so"))
        var settlement = Settlement.of(request, outcome: outcome)
        canvas.continue(&settlement, request: request)
        return settlement
    }

    var canvas: Canvas { Canvas(router: TaskRouter(), origin: "fnhost@test", supportsChords: true) }

    @Test func theLastPartAppliesTheBodyOnceWithResultsInHeaderOrder() throws {
        let (memory, chords, handler) = setUp()
        handler.start()
        defer { handler.stop() }
        try chords.setChordSizes([("g-1", 3)])
        for i in [2, 0, 1] { handler.submit(try part(i, canvas: canvas, outcome: .success(resultJSON: Array(String(i * 10).utf8)))) }
        // A duplicate run of a part (a redelivery) counts once and applies nothing more.
        handler.submit(try part(1, canvas: canvas, outcome: .success(resultJSON: Array("10".utf8))))
        #expect(handler.flush(timeout: 10))
        #expect(memory.length(of: "math.xsum") == 1)
        #expect(chords.isDone("g-1"))
        let fetched = try memory.fetch(FetchPlan(entries: [.init(queue: "math.xsum", limit: 5)], total: 5), timeout: 1)
        let message = try #require(try fetched.first?.message.get())
        #expect(message.id == "body-1" && message.group == "g-1")
        #expect(try JSONParser.parse(message.body)[0] == [[0, 10, 20]])
    }

    @Test func aRetriedChordStepPublishesTheBodyOnce() throws {
        let (memory, chords, handler) = setUp()
        chords.failFinishing = 1
        handler.start()
        defer { handler.stop() }
        try chords.setChordSizes([("g-1", 1)])
        handler.submit(try part(0, canvas: canvas, outcome: .success(resultJSON: Array("5".utf8))))
        #expect(handler.flush(timeout: 10))
        #expect(memory.length(of: "math.xsum") == 1)
        #expect(chords.isDone("g-1"))
        #expect(memory.unackedCount == 0)
    }

    @Test func aFailedPartFailsTheBodyWithChordError() throws {
        let (memory, chords, handler) = setUp()
        handler.start()
        defer { handler.stop() }
        try chords.setChordSizes([("g-1", 2)])
        handler.submit(try part(0, canvas: canvas, outcome: .success(resultJSON: Array("5".utf8))))
        handler.submit(try part(1, canvas: canvas, outcome: .failure(TaskException(type: "KeyError", module: "builtins", message: "k"), traceback: nil)))
        #expect(handler.flush(timeout: 10))
        #expect(memory.length(of: "math.xsum") == 0)
        let meta = try #require(memory.result("body-1"))
        #expect(meta.status == .failure)
        #expect(try JSONParser.parse(meta.resultJSON)["exc_message"] == ["Dependency h-1 raised KeyError('k')"])
    }
}
