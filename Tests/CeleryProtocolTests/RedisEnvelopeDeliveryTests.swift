import CeleryProtocol
import Testing

/// `RedisEnvelope.decodeDelivery` (the broker's per-message reader) against `decodeTask` (the
/// reference, over the full JSON tree): for every envelope, the same tag, restore address, task
/// and refusal.
@Suite struct RedisEnvelopeDeliveryTests {
    /// Records every difference between the two readers for `bytes`.
    static func expectSame(_ bytes: [UInt8], _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let fast = RedisEnvelope.decodeDelivery(bytes)
        let (envelope, reference) = RedisEnvelope.decodeTask(bytes)
        #expect(fast.deliveryTag == envelope?.deliveryTag, "\(label): delivery tag", sourceLocation: sourceLocation)
        #expect(fast.exchange == (envelope?.exchange ?? ""), "\(label): exchange", sourceLocation: sourceLocation)
        #expect(fast.routingKey == (envelope?.routingKey ?? ""), "\(label): routing key", sourceLocation: sourceLocation)
        switch (fast.message, reference) {
        case (.success(let a), .success(let b)):
            #expect(a.id == b.id && a.task == b.task && a.body == b.body && a.headers == b.headers, "\(label): task", sourceLocation: sourceLocation)
            #expect(a.contentType == b.contentType && a.contentEncoding == b.contentEncoding, "\(label): content", sourceLocation: sourceLocation)
            #expect(a.correlationId == b.correlationId && a.replyTo == b.replyTo && a.priority == b.priority, "\(label): properties",
                    sourceLocation: sourceLocation)
        case (.failure(let a), .failure(let b)):
            #expect(a == b, "\(label): refusal", sourceLocation: sourceLocation)
        case (let a, let b):
            Issue.record("\(label): decodeDelivery gave \(a), decodeTask \(b)", sourceLocation: sourceLocation)
        }
    }

    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func theGoldenCapturesDecodeAlike() throws {
        for name in [Fixture.taskEnvelope, Fixture.ignoreResultEnvelope, Fixture.signedTaskEnvelope] {
            let bytes = try Fixture.bytes(name)
            Self.expectSame(bytes, name)
            let decoded = RedisEnvelope.decodeDelivery(bytes)
            #expect(decoded.deliveryTag != nil, "\(name) has a delivery tag")
            #expect(throws: Never.self) { try decoded.message.get() }
        }
    }

    @Test func everyCanvasCaptureDecodesAlike() throws {
        for name in ["canvas_chain3", "canvas_chain_group", "canvas_chord3", "canvas_group_of_chains", "canvas_link_error", "canvas_link_two"] {
            let lines = try Fixture.bytes("\(name).raw.jsonl").split(separator: UInt8(ascii: "\n"))
            #expect(!lines.isEmpty)
            for (i, line) in lines.enumerated() { Self.expectSame(Array(line), "\(name) line \(i)") }
        }
    }

    @Test func everyPrefixOfTheGoldenEnvelopeIsRefusedAlike() throws {
        let golden = try Fixture.bytes(Fixture.taskEnvelope)
        for length in 0..<golden.count { Self.expectSame(Array(golden[0..<length]), "a \(length)-byte prefix") }
    }

    /// Envelopes the in-place reader hands to the reference path (repeated or escaped members,
    /// bodies that are not plain ASCII strings) and envelopes it reads itself with an odd member.
    @Test func unusualEnvelopesDecodeAlike() throws {
        let golden = String(decoding: try Fixture.bytes(Fixture.taskEnvelope), as: UTF8.self)
        let body = try #require(try RedisEnvelope(bytes: Self.text(golden)).document["body"]?.stringValue)
        func variant(_ label: String, _ edit: (String) -> String) {
            let edited = edit(golden)
            #expect(edited != golden, "\(label): the edit applies")
            Self.expectSame(Self.text(edited), label)
        }
        let start = "{\"body\": "
        #expect(golden.hasPrefix(start))
        variant("body given twice, the second wins") { $0.replacingFirst(start, with: "{\"body\": \"bm90IHRoaXM=\", \"body\": ") }
        variant("headers given twice") { $0.replacingFirst(start, with: "{\"headers\": {\"id\": \"x\", \"task\": \"y\"}, \"body\": ") }
        variant("properties given twice") { $0.replacingFirst(start, with: "{\"properties\": {\"delivery_tag\": \"first\"}, \"body\": ") }
        variant("content-type given twice") { $0.replacingFirst(start, with: "{\"content-type\": \"application/x-python-serialize\", \"body\": ") }
        variant("an escaped member name") { $0.replacingFirst("\"body\"", with: "\"bod\\u0079\"") }
        variant("an escaped body") { $0.replacingFirst("\"\(body)\"", with: "\"\\u0057\(body.dropFirst())\"") }
        variant("a body with a non-ASCII character") { $0.replacingFirst("\"\(body)\"", with: "\"\u{e9}\(body)\"") }
        variant("a body that is a number") { $0.replacingFirst("\"\(body)\"", with: "42") }
        variant("a body that is null") { $0.replacingFirst("\"\(body)\"", with: "null") }
        variant("no body") { $0.replacingFirst("\"body\": \"\(body)\", ", with: "") }
        variant("a body that is not base64") { $0.replacingFirst("\"\(body)\"", with: "\"not base64!\"") }
        variant("a utf-8 body") { $0.replacingFirst("\"body_encoding\": \"base64\"", with: "\"body_encoding\": \"utf-8\"") }
        variant("an unknown body encoding") { $0.replacingFirst("\"body_encoding\": \"base64\"", with: "\"body_encoding\": \"rot13\"") }
        variant("headers that are a list") { $0.replacingFirst("\"headers\": {", with: "\"headers\": [{").replacingFirst(", \"properties\"", with: "], \"properties\"") }
        variant("no headers") { $0.replacingFirst("\"headers\": {", with: "\"headerz\": {") }
        variant("properties that are a string") { $0.replacingFirst("\"properties\": {", with: "\"properties\": \"x\", \"p\": {") }
        variant("an unknown member with nested values") { $0.replacingFirst(start, with: "{\"x\": [1, {\"y\": null}, \"z\"], \"body\": ") }
        variant("an unknown member given twice") { $0.replacingFirst(start, with: "{\"x\": 1, \"x\": 2, \"body\": ") }
        variant("spaces everywhere") { " \n" + $0.replacingFirst(start, with: "{ \"body\" :\t") + " \r\n" }
        variant("data after the envelope") { $0 + " {}" }
        variant("a missing comma") { $0.replacingFirst("\", \"content-encoding\"", with: "\" \"content-encoding\"") }
        variant("invalid JSON in an unknown member") { $0.replacingFirst(start, with: "{\"x\": [1,], \"body\": ") }
        for document in ["{}", "[]", "\"body\"", "{\"body\": \"\"}", "{\"body\": \"YQ==\", \"headers\": {\"id\": \"i\", \"task\": \"t\"}}", "", "{"] {
            Self.expectSame(Self.text(document), document)
        }
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        variant("nesting deeper than the parser takes") { $0.replacingFirst(start, with: "{\"x\": \(deep), \"body\": ") }
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
