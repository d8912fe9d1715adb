import CeleryProtocol
import Testing

@Suite struct RedisEnvelopeEncodeTests {
    @Test func encodedEnvelopeDecodesAndKeepsHeaders() throws {
        let h = headers(id: "enc-1", task: "tests.mul", [
            "eta": "2026-11-25T00:17:12.661751+00:00", "retries": 2, "timelimit": [30, 20],
            "x-custom": .object(["nested": [1, "two"]]), "stamps": .object([:]),
        ])
        let body = TaskBody.encode(args: [6, 7], kwargs: .object(["unicode": "é😀"]))
        let original = try TaskMessage(headers: h, contentType: "application/json", contentEncoding: "utf-8", body: body,
                                       correlationId: "enc-1", replyTo: "reply-queue", priority: 3)
        let bytes = RedisEnvelope.encode(original, queue: "math", deliveryTag: "tag-9")

        let envelope = try RedisEnvelope(bytes: bytes)
        #expect(envelope.deliveryTag == "tag-9")
        #expect(envelope.exchange == "")
        #expect(envelope.routingKey == "math")
        #expect(envelope.document["properties"]?["body_encoding"] == "base64")
        #expect(envelope.document["properties"]?["delivery_mode"] == 2)

        let decoded = try envelope.taskMessage()
        #expect(decoded.headers == h)
        #expect(decoded.id == "enc-1")
        #expect(decoded.task == "tests.mul")
        #expect(decoded.retries == 2)
        #expect(decoded.eta == original.eta)
        #expect(decoded.timeLimit.hard == 30)
        #expect(decoded.timeLimit.soft == 20)
        #expect(decoded.body == body)
        #expect(decoded.contentType == "application/json")
        #expect(decoded.contentEncoding == "utf-8")
        #expect(decoded.correlationId == "enc-1")
        #expect(decoded.replyTo == "reply-queue")
        #expect(decoded.priority == 3)
    }

    @Test func reencodingTheGoldenMessageKeepsEveryHeader() throws {
        let golden = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope))
        let message = try golden.taskMessage()
        let again = try RedisEnvelope(bytes: RedisEnvelope.encode(message, queue: "celery", deliveryTag: "new-tag"))
        #expect(again.document["headers"] == golden.document["headers"])
        #expect(again.document["body"] == golden.document["body"])
        #expect(try again.taskMessage().body == message.body)
        #expect(again.document["properties"]?["reply_to"] == golden.document["properties"]?["reply_to"])
        #expect(again.document["properties"]?["correlation_id"] == golden.document["properties"]?["correlation_id"])
        #expect(again.deliveryTag == "new-tag")
    }

    @Test func redeliveredBytesMarkHeadersAndDeliveryInfo() throws {
        let golden = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope))
        #expect(golden.document["headers"]?["redelivered"] == nil)
        let restored = try RedisEnvelope(bytes: golden.redeliveredBytes())
        #expect(restored.document["headers"]?["redelivered"] == true)
        #expect(restored.document["properties"]?["delivery_info"]?["redelivered"] == true)
        // Everything else is unchanged.
        #expect(restored.deliveryTag == golden.deliveryTag)
        #expect(restored.routingKey == "celery")
        let before = try golden.taskMessage(), after = try restored.taskMessage()
        #expect(after.id == before.id)
        #expect(after.body == before.body)
        var headers = after.headers
        headers["redelivered"] = nil
        #expect(headers == before.headers)
    }

    @Test func utf8BodyEncodingAndMissingEncodingAreReadAsText() throws {
        let encodings: [JSON] = ["utf-8", .null]
        for encoding in encodings {
            let doc: JSON = .object([
                "body": "[[1], {}, {}]", "content-type": "application/json", "content-encoding": "utf-8",
                "headers": .object(headers(id: "u-1")),
                "properties": .object(["body_encoding": encoding, "delivery_tag": "t", "delivery_info": .object(["exchange": "", "routing_key": "q"])]),
            ])
            let message = try RedisEnvelope(bytes: JSONWriter.bytes(doc)).taskMessage()
            #expect(message.body == Array("[[1], {}, {}]".utf8))
        }
    }

    @Test func badBodyKeepsTaskIdForTheFailureResult() throws {
        let cases: [(body: JSON, encoding: JSON)] = [("not base64 !", "base64"), (5, "base64"), ("eA==", "rot13")]
        for (body, encoding) in cases {
            let doc: JSON = .object([
                "body": body, "content-type": "application/json", "content-encoding": "utf-8",
                "headers": .object(headers(id: "b-1", task: "tests.b")),
                "properties": .object(["body_encoding": encoding, "delivery_tag": "t"]),
            ])
            let (envelope, message) = RedisEnvelope.decodeTask(JSONWriter.bytes(doc))
            #expect(envelope != nil)
            #expect(throws: MessageDecodingError.self) { try message.get() }
            if case .failure(let e) = message {
                #expect(e.kind == .undecodableBody)
                #expect(e.taskId == "b-1")
                #expect(e.taskName == "tests.b")
            }
        }
    }

    @Test(arguments: ["not json", "[1, 2]", "\"envelope\"", "{\"body\": \"\"}", "{\"headers\": []}"])
    func envelopesWithoutHeadersAreMalformedWithoutTaskId(text: String) {
        let (_, message) = RedisEnvelope.decodeTask(Array(text.utf8))
        if case .failure(let e) = message {
            #expect(e.taskId == nil)
            #expect(e.kind == .malformedEnvelope || e.kind == .malformedHeaders)
        } else {
            Issue.record("\(text) decoded as a task")
        }
    }
}
