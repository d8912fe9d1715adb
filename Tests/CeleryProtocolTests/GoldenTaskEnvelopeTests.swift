import CeleryProtocol
import Testing

@Suite struct GoldenTaskEnvelopeTests {
    @Test func capturedRedisEnvelopeDecodesHeadersAndProperties() throws {
        let envelope = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope))
        #expect(envelope.deliveryTag == "83db65e6-6e57-41f6-b97c-e16ba7cf8869")
        #expect(envelope.exchange == "")
        #expect(envelope.routingKey == "celery")

        let message = try envelope.taskMessage()
        #expect(message.id == "6a8885e1-2b95-432c-a7a3-72345e3d9d91")
        #expect(message.task == "bench.add")
        #expect(message.retries == 0)
        #expect(message.rootId == "6a8885e1-2b95-432c-a7a3-72345e3d9d91")
        #expect(message.parentId == nil)
        #expect(message.timeLimit.hard == nil)
        #expect(message.timeLimit.soft == nil)
        #expect(message.ignoreResult == nil)
        #expect(message.eta == nil)
        #expect(message.expires == nil)
        #expect(message.replyTo == "87d2ad2e-e1b4-3f26-8183-72b55f012766")
        #expect(message.correlationId == "6a8885e1-2b95-432c-a7a3-72345e3d9d91")
        #expect(message.contentType == "application/json")
        #expect(message.contentEncoding == "utf-8")
        #expect(message.priority == 0)
        #expect(message.contentProblem() == nil)
        // Custom headers are kept as received.
        #expect(message.headers["origin"] == "gen29850@vm")
        #expect(message.headers["argsrepr"] == "(2, 3)")
    }

    @Test func capturedBase64BodyDecodesToArgsKwargsEmbed() throws {
        let message = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope)).taskMessage()
        let body = try JSONParser.parse(message.body)
        let embed: JSON = .object(["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil])
        #expect(body == .array([[2, 3], .object([:]), embed]))

        let split = try TaskBody(json: message.body)
        #expect(split.argsJSON == Array("[2, 3]".utf8))
        #expect(split.kwargsJSON == Array("{}".utf8))
    }

    @Test func capturedIgnoreResultEnvelopeSaysTrue() throws {
        let message = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.ignoreResultEnvelope)).taskMessage()
        #expect(message.task == "bench.noop")
        #expect(message.ignoreResult == true)
    }

    @Test func capturedRetryMessageHasRetriesOneAndParsedEta() throws {
        // The fixture is the unacked-hash value [envelope, exchange, routing_key]: take element 0 as sent.
        let raw = try Fixture.bytes(Fixture.retryMessage)
        let ranges = try raw.withUnsafeBufferPointer { try JSONParser.topLevelElementRanges($0) }
        try #require(ranges.count == 3)
        #expect(try JSONParser.parse(raw[ranges[2]]) == "celery")

        let envelope = try RedisEnvelope(bytes: raw[ranges[0]])
        #expect(envelope.deliveryTag == "a079c587-22a6-4981-991e-72c7936ee7c1")
        let message = try envelope.taskMessage()
        #expect(message.id == "e5a85c2b-96a0-440f-898f-4bc9bb195794")
        #expect(message.task == "bench.fail_then_succeed")
        #expect(message.retries == 1)
        #expect(message.parentId == "e5a85c2b-96a0-440f-898f-4bc9bb195794")
        #expect(message.ignoreResult == false)
        // 2026-11-25T00:17:12.661751+00:00 is 1795565832.661751 (date -u -d ... +%s).
        let eta = try #require(message.eta)
        #expect(abs(eta - 1_795_565_832.661751) < 1e-6)

        let body = try TaskBody(json: message.body)
        #expect(try JSONParser.parse(body.argsJSON) == [])
        #expect(try JSONParser.parse(body.kwargsJSON) == .object(["fail_times": 1, "countdown": 60]))
    }
}
