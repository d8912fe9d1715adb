import CeleryProtocol
import Testing

/// Every prefix of a golden capture goes through the decoders: each is refused or decoded,
/// none crashes (a trap would kill the test process).
@Suite struct TruncationTests {
    @Test func everyPrefixOfTheGoldenEnvelopeIsRefusedWithoutCrashing() throws {
        let golden = try Fixture.bytes(Fixture.taskEnvelope)
        for length in 0..<golden.count {
            let (_, message) = RedisEnvelope.decodeTask(golden[0..<length])
            if case .success = message { Issue.record("a \(length)-byte prefix decoded as a task") }
        }
        let (_, whole) = RedisEnvelope.decodeTask(golden)
        #expect(throws: Never.self) { try whole.get() }
    }

    @Test func everyPrefixOfTheRetryCaptureIsRefusedWithoutCrashing() throws {
        let golden = try Fixture.bytes(Fixture.retryMessage)
        for length in 0..<golden.count {
            #expect(throws: JSONParser.Error.self) { try JSONParser.parse(golden[0..<length]) }
            _ = golden[0..<length].withUnsafeBufferPointer { try? JSONParser.topLevelElementRanges($0) }
        }
    }

    @Test func everyPrefixOfTheGoldenBodyIsRefusedWithoutCrashing() throws {
        let message = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope)).taskMessage()
        for length in 0..<message.body.count {
            #expect(throws: MessageDecodingError.self) { try TaskBody(json: Array(message.body[0..<length])) }
        }
    }

    @Test func everyPrefixOfTheGoldenBase64BodyDecodesOrIsRefused() throws {
        let envelope = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope))
        let base64 = Array(try #require(envelope.document["body"]?.stringValue).utf8)
        let full = try #require(Base64.decode(base64))
        for length in 0...base64.count {
            let decoded = Base64.decode(base64[0..<length])
            // Complete unpadded 4-character groups decode to a prefix of the body.
            if length % 4 == 0, !base64[0..<length].contains(UInt8(ascii: "=")) {
                #expect(decoded == Array(full.prefix(length / 4 * 3)))
            }
        }
    }

    @Test func everyPrefixOfTheGoldenEnvelopeWithBase64BodyCutIsRefused() throws {
        // Cut inside the body string only: the envelope stays valid JSON, the body does not.
        let golden = try JSONParser.parse(try Fixture.bytes(Fixture.taskEnvelope))
        let base64 = try #require(golden["body"]?.stringValue)
        guard case .object(var doc) = golden else { Issue.record("not an object"); return }
        for length in stride(from: 0, to: base64.utf8.count, by: 1) {
            doc["body"] = .string(String(base64.prefix(length)))
            let (envelope, message) = RedisEnvelope.decodeTask(JSONWriter.bytes(.object(doc)))
            #expect(envelope != nil)
            guard case .success(let m) = message else { continue }
            #expect(throws: MessageDecodingError.self) { try TaskBody(json: m.body) }
        }
    }
}
