import CeleryProtocol
import FnHostCore
import Testing

/// Ids "id-1", "id-2"... so that what the canvas publishes can be asserted exactly.
final class SequentialIds: @unchecked Sendable {
    private let lock = ConditionLock()
    private var next = 0
    func make() -> String { lock.withLock { next += 1; return "id-\(next)" } }
}

@Suite struct CanvasTests {
    let ids = SequentialIds()

    func canvas(chords: Bool = true, routes: [(pattern: String, queue: String)] = []) -> Canvas {
        let ids = self.ids
        return Canvas(router: TaskRouter(functionQueues: ["math.add": "arith", "math.mul": "math.mul"], routes: routes),
                      origin: "fnhost@test", supportsChords: chords, makeId: { ids.make() }, clock: { 1_800_000_000 })
    }

    func step(_ task: String, _ args: [JSON], id: String? = nil, options: JSONObject = [:], immutable: Bool = false) -> Signature {
        var options = options
        if let id { options["task_id"] = .string(id) }
        return Signature(task: task, args: args, options: options, immutable: immutable)
    }

    /// A finished request of `math.add` whose body carries `embed`.
    func request(_ embed: CanvasEmbed, id: String = "t-1", headers: JSONObject = [:], ignoreResult: Bool = false) throws -> TaskRequest {
        var all: JSONObject = ["lang": "py", "task": "math.add", "id": .string(id), "retries": 0, "root_id": "root-1",
                               "parent_id": nil, "group": nil, "group_index": nil, "ignore_result": .bool(ignoreResult)]
        for (k, v) in headers.entries { all[k] = v }
        let body = JSONWriter.bytes(.array([[1, 2], .object([:]), embed.json]))
        let message = try TaskMessage(headers: all, contentType: "application/json", contentEncoding: "utf-8", body: body,
                                      correlationId: id, replyTo: "reply")
        let function = RegisteredFunction(name: "math.add", kind: .task, options: TaskOptions(), plugin: "libmath.so")
        return TaskRequest(delivery: delivery(of: message, queue: "arith"), message: message, function: function)
    }

    func settle(_ request: TaskRequest, _ outcome: TaskOutcome, canvas: Canvas? = nil) -> Settlement {
        var s = Settlement.of(request, outcome: outcome)
        (canvas ?? self.canvas()).continue(&s, request: request)
        return s
    }

    func body(_ m: TaskMessage) throws -> (args: JSON, embed: CanvasEmbed) {
        let json = try JSONParser.parse(m.body)
        return (json[0]!, try CanvasEmbed(json: json[2]))
    }

    @Test func chainSuccessPublishesTheLastStepWithItsFrozenIdBeforeStoringSuccess() throws {
        let later = step("math.mul", [2], id: "s-3", options: ["reply_to": "client"])
        let next = step("math.mul", [3], id: "s-2", options: ["reply_to": "client"])
        let s = settle(try request(CanvasEmbed(chain: [later, next])), .success(resultJSON: Array("3".utf8)))
        try #require(s.publish.count == 1)
        let (queue, message) = s.publish[0]
        #expect(queue == "math.mul")
        #expect(message.id == "s-2" && message.task == "math.mul")
        #expect(message.parentId == "t-1" && message.rootId == "root-1")
        #expect(message.replyTo == "client" && message.correlationId == "s-2")
        #expect(message.headers["argsrepr"] == "(3, 3)" && message.headers["origin"] == "fnhost@test")
        let (args, embed) = try body(message)
        #expect(args == [3, 3])
        #expect(embed.chain == [later])
        #expect(s.results.first?.children == [[["s-2", nil], nil]])
    }

    @Test func lastChainStepCarriesAnEmptyChain() throws {
        let s = settle(try request(CanvasEmbed(chain: [step("math.mul", [2], id: "s-2")])), .success(resultJSON: Array("3".utf8)))
        let json = try JSONParser.parse(s.publish[0].message.body)
        #expect(json[2]?["chain"] == .array([]))
    }

    @Test func immutableStepKeepsItsOwnArgs() throws {
        let s = settle(try request(CanvasEmbed(chain: [step("math.add", [5, 5], id: "s-2", immutable: true)])), .success(resultJSON: Array("3".utf8)))
        #expect(try body(s.publish[0].message).args == [5, 5])
        #expect(s.publish[0].queue == "arith")
    }

    @Test func routingPrefersTheSignatureQueueThenTheFunctionThenRoutesThenCelery() {
        let router = TaskRouter(functionQueues: ["math.add": "arith"], routes: [("images.*", "img"), ("other.task", "o")])
        #expect(router.queue(for: "math.add", options: ["queue": "mine"]) == "mine")
        #expect(router.queue(for: "math.add") == "arith")
        #expect(router.queue(for: "images.resize") == "img")
        #expect(router.queue(for: "other.task") == "o")
        #expect(router.queue(for: "python.task") == "celery")
    }

    @Test func oneLinkIsAppliedWithTheResultAndAFreshId() throws {
        let s = settle(try request(CanvasEmbed(callbacks: [step("math.mul", [10])])), .success(resultJSON: Array("4".utf8)))
        try #require(s.publish.count == 1)
        let message = s.publish[0].message
        #expect(message.id == "id-1" && message.group == nil && message.parentId == "t-1")
        #expect(try body(message).args == [4, 10])
    }

    @Test func severalLinksAreAppliedAsOneGroup() throws {
        let s = settle(try request(CanvasEmbed(callbacks: [step("math.mul", [2]), step("math.mul", [3])])), .success(resultJSON: Array("4".utf8)))
        try #require(s.publish.count == 2)
        #expect(s.publish.map(\.message.group) == ["id-1", "id-1"])
        #expect(s.publish.map(\.message.groupIndex) == [0, 1])
        #expect(s.results.first?.children == [[["id-1", nil], [[["id-2", nil], nil], [["id-3", nil], nil]]]])
    }

    @Test func chainFailureFailsEveryRemainingStep() throws {
        let chain = [step("math.mul", [2], id: "s-3"), step("math.mul", [3], id: "s-2")]
        let s = settle(try request(CanvasEmbed(chain: chain)), .failure(TaskException(type: "ValueError", module: "builtins", message: "bad"), traceback: nil))
        #expect(s.publish.isEmpty)
        #expect(s.results.map(\.taskId) == ["t-1", "s-3", "s-2"])
        #expect(s.results.allSatisfy { $0.status == .failure })
        #expect(try JSONParser.parse(s.results[2].resultJSON)["exc_type"] == "ValueError")
    }

    @Test func chainFailureDescendsIntoAChordStepsBody() throws {
        let bodySignature = step("math.xsum", [], id: "body-1")
        let chordStep = Signature(task: "celery.chord", kwargs: [
            "header": Signature(task: "celery.group", kwargs: ["tasks": [step("math.mul", [2], id: "h-1").json]], options: ["task_id": "g-1"], subtaskType: "group").json,
            "body": bodySignature.json, "kwargs": .object([:]),
        ], options: ["task_id": "g-1"], subtaskType: "chord")
        let s = settle(try request(CanvasEmbed(chain: [chordStep])), .failure(TaskException(type: "ValueError", module: "builtins", message: "x"), traceback: nil))
        #expect(s.results.map(\.taskId) == ["t-1", "g-1", "body-1"])
    }

    @Test func errbacksArePublishedAfterTheStoreWithTheFailedTaskId() throws {
        let s = settle(try request(CanvasEmbed(errbacks: [step("errors.record", ["extra"])])), .failure(TaskException(type: "ValueError", module: "builtins", message: "x"), traceback: nil))
        #expect(s.publish.isEmpty)
        try #require(s.publishAfterStore.count == 1)
        let (queue, message) = s.publishAfterStore[0]
        #expect(queue == "celery" && message.task == "errors.record")
        #expect(message.group == "id-1" && message.groupIndex == 0 && message.parentId == "t-1")
        #expect(try body(message).args == ["t-1", "extra"])
    }

    @Test func chordHeaderMemberCountsItsPartOnSuccessAndFailure() throws {
        let bodySignature = step("math.xsum", [], id: "body-1", options: ["group_id": "g-1"])
        let headers: JSONObject = ["group": "g-1", "group_index": 2]
        let ok = settle(try request(CanvasEmbed(chord: bodySignature), headers: headers), .success(resultJSON: Array("7".utf8)))
        #expect(ok.chordParts.count == 1)
        #expect(ok.chordParts[0].groupId == "g-1" && ok.chordParts[0].groupIndex == 2 && ok.chordParts[0].result == 7)
        let failed = settle(try request(CanvasEmbed(chord: bodySignature), headers: headers), .failure(TaskException(type: "KeyError", module: "builtins", message: "k"), traceback: nil))
        #expect(failed.chordParts.first?.state == .failure)
    }

    @Test func chordJoinedAppliesTheBodyWithResultsInHeaderOrder() throws {
        let bodySignature = step("math.xsum", [], id: "body-1", options: ["group_id": "g-1"])
        let part = ChordPart(groupId: "g-1", taskId: "h-3", groupIndex: 2, state: .success, result: 3, body: bodySignature, rootId: "root-1")
        let next = canvas().chordJoined(part, results: [.init(taskId: "h-1", state: "SUCCESS", result: 1), .init(taskId: "h-2", state: "SUCCESS", result: 2),
                                                        .init(taskId: "h-3", state: "SUCCESS", result: 3)])
        #expect(!next.chordFailed)
        try #require(next.publish.count == 1)
        let message = next.publish[0].message
        #expect(message.id == "body-1" && message.group == "g-1" && message.parentId == "h-3" && message.rootId == "root-1")
        #expect(try body(message).args == [[1, 2, 3]])
    }

    @Test func chordJoinedWithAFailedPartStoresChordErrorUnderTheBody() throws {
        let bodySignature = step("math.xsum", [], id: "body-1", options: ["group_id": "g-1", "chain": [step("math.mul", [2], id: "after-1").json]])
        let part = ChordPart(groupId: "g-1", taskId: "h-2", groupIndex: 1, state: .failure, result: .object([:]), body: bodySignature, rootId: "root-1")
        let error = TaskException(type: "ZeroDivisionError", module: "builtins", message: "division by zero").json
        let next = canvas().chordJoined(part, results: [.init(taskId: "h-1", state: "SUCCESS", result: 1), .init(taskId: "h-2", state: "FAILURE", result: error)])
        #expect(next.chordFailed && next.publish.isEmpty)
        #expect(next.results.map(\.taskId) == ["body-1", "after-1"])
        let stored = try JSONParser.parse(next.results[0].resultJSON)
        #expect(stored["exc_type"] == "ChordError" && stored["exc_module"] == "celery.exceptions")
        #expect(stored["exc_message"] == ["Dependency h-2 raised ZeroDivisionError('division by zero')"])
    }

    @Test func aChordStepSetsItsSizeAndSendsEveryHeaderMemberWithTheBody() throws {
        let header = Signature(task: "celery.group", kwargs: ["tasks": [step("math.mul", [2], id: "h-1").json, step("math.mul", [3], id: "h-2").json]],
                               options: ["task_id": "g-1"], subtaskType: "group")
        let chordStep = Signature(task: "celery.chord", kwargs: ["header": header.json, "body": step("math.xsum", [], id: "body-1").json, "kwargs": .object([:])],
                                  options: ["task_id": "g-1"], subtaskType: "chord")
        let s = settle(try request(CanvasEmbed(chain: [step("math.mul", [10], id: "after-1"), chordStep])), .success(resultJSON: Array("2".utf8)))
        #expect(s.chordSizes.map(\.groupId) == ["g-1"] && s.chordSizes.map(\.size) == [2])
        #expect(s.publish.map(\.message.id) == ["h-1", "h-2"])
        #expect(s.publish.map(\.message.group) == ["g-1", "g-1"])
        let (args, embed) = try body(s.publish[1].message)
        #expect(args == [2, 3])
        #expect(embed.chord?.taskId == "body-1" && embed.chord?.options["group_id"] == "g-1")
        // The rest of the chain rides on the body.
        #expect(embed.chord?.options["chain"] == [step("math.mul", [10], id: "after-1").json])
    }

    @Test func aChordWithoutAChordBackendFailsTheTaskClearlyAndItsChain() throws {
        let chordStep = Signature(task: "celery.chord", kwargs: ["header": Signature(task: "celery.group", kwargs: ["tasks": []], subtaskType: "group").json,
                                                                  "body": step("math.xsum", [], id: "body-1").json], subtaskType: "chord")
        let s = settle(try request(CanvasEmbed(chain: [chordStep])), .success(resultJSON: Array("2".utf8)), canvas: canvas(chords: false))
        #expect(s.publish.isEmpty)
        #expect(s.results.first?.status == .failure)
        let stored = try JSONParser.parse(s.results[0].resultJSON)
        #expect(stored["exc_type"] == "NotImplementedError")
        #expect(s.results.map(\.taskId).contains("body-1"))
    }

    @Test func aChordPartOnABackendWithoutChordsFailsTheBodyInsteadOfHanging() throws {
        let bodySignature = step("math.xsum", [], id: "body-1", options: ["group_id": "g-1"])
        let s = settle(try request(CanvasEmbed(chord: bodySignature), headers: ["group": "g-1", "group_index": 0]),
                       .success(resultJSON: Array("7".utf8)), canvas: canvas(chords: false))
        #expect(s.chordParts.isEmpty)
        #expect(s.results.map(\.taskId) == ["t-1", "body-1"])
        #expect(s.results[0].status == .success && s.results[1].status == .failure)
        #expect(try JSONParser.parse(s.results[1].resultJSON)["exc_type"] == "NotImplementedError")
    }

    @Test func aMalformedEmbedFailsASuccessfulTaskWithDecodeError() throws {
        let message = try taskMessage(id: "t-9", task: "math.add")
        var bad = message
        bad.body = Array(#"[[1], {}, {"chain": 5}]"#.utf8)
        let function = RegisteredFunction(name: "math.add", kind: .task, options: TaskOptions(), plugin: "libmath.so")
        let request = TaskRequest(delivery: delivery(of: bad, queue: "arith"), message: bad, function: function)
        let s = settle(request, .success(resultJSON: Array("1".utf8)))
        #expect(s.results.first?.status == .failure)
        #expect(try JSONParser.parse(s.results[0].resultJSON)["exc_type"] == "DecodeError")
    }

    @Test func plainTasksAreLeftAlone() throws {
        let s = settle(try request(CanvasEmbed()), .success(resultJSON: Array("3".utf8)))
        #expect(s.publish.isEmpty && s.chordParts.isEmpty && s.results.first?.children == [])
    }
}
