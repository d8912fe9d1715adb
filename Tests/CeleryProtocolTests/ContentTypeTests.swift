import CeleryProtocol
import Testing

@Suite struct ContentTypeTests {
    /// A pickle protocol-4 prefix: never valid JSON, and must never be looked at.
    static let pickleBytes: [UInt8] = [0x80, 0x04, 0x95, 0x1F, 0x00, 0x00, 0x00, 0x00, 0x8C, 0x08, 0x62, 0x75, 0x69, 0x6C, 0x74, 0x69, 0x6E, 0x73]

    @Test(arguments: ["application/x-python-serialize", "application/x-yaml", "application/x-msgpack", "text/plain", ""])
    func nonJSONContentIsContentDisallowed(contentType: String) throws {
        let message = try TaskMessage(headers: headers(id: "p-1", task: "tests.pickled"), contentType: contentType,
                                      contentEncoding: "binary", body: Self.pickleBytes)
        let problem = try #require(message.contentProblem())
        #expect(problem.kind == .contentDisallowed)
        #expect(problem.taskId == "p-1")
        #expect(problem.taskName == "tests.pickled")
        #expect(problem.exception.type == "ContentDisallowed")
        #expect(problem.exception.module == "kombu.exceptions")
        // The body is handed over untouched: nothing decoded it.
        #expect(message.body == Self.pickleBytes)
    }

    @Test func pickleEnvelopeIsRefusedWithoutDecodingItsBody() throws {
        // A Redis envelope whose base64 body is a pickle: the envelope decodes, the content is refused
        // by type, before any attempt to read the body as JSON.
        let message = try TaskMessage(headers: headers(id: "p-2"), contentType: "application/x-python-serialize",
                                      contentEncoding: "binary", body: Self.pickleBytes)
        let bytes = RedisEnvelope.encode(message, queue: "celery", deliveryTag: "t")
        let decoded = try RedisEnvelope(bytes: bytes).taskMessage()
        #expect(decoded.body == Self.pickleBytes)
        #expect(decoded.contentProblem()?.kind == .contentDisallowed)
    }

    @Test(arguments: ["application/json", "application/json; charset=utf-8", " application/json "])
    func jsonContentIsAccepted(contentType: String) throws {
        let message = try TaskMessage(headers: headers(), contentType: contentType, contentEncoding: "utf-8", body: TaskBody.encode(args: []))
        #expect(message.contentProblem() == nil)
    }

    @Test func compressedBodyIsUndecodable() throws {
        let message = try jsonMessage(headers(id: "z-1", ["compression": "application/x-gzip"]))
        let problem = try #require(message.contentProblem())
        #expect(problem.kind == .undecodableBody)
        #expect(problem.taskId == "z-1")
        #expect(problem.exception.type == "DecodeError")
    }

    @Test(arguments: ["rot13", "utf-16", "gzip"])
    func unknownContentEncodingIsUndecodable(encoding: String) throws {
        let message = try TaskMessage(headers: headers(id: "e-1"), contentType: "application/json", contentEncoding: encoding, body: TaskBody.encode(args: []))
        let problem = try #require(message.contentProblem())
        #expect(problem.kind == .undecodableBody && problem.taskId == "e-1" && problem.reason.contains("content-encoding"))
    }

    @Test(arguments: ["utf-8", "UTF-8", "utf8", "binary", ""])
    func utf8ContentEncodingsAreAccepted(encoding: String) throws {
        let message = try TaskMessage(headers: headers(), contentType: "application/json", contentEncoding: encoding, body: TaskBody.encode(args: []))
        #expect(message.contentProblem() == nil)
    }
}
