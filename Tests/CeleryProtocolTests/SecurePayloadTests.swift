import CeleryProtocol
import Testing

/// The `auth` serializer's payload, against a real Celery 5.7 capture and tampered variants.
@Suite struct SecurePayloadTests {
    static let signer = "fnhost fixtures fixture signer 4242"
    static let body = #"[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#

    func capturedMessage() throws -> TaskMessage {
        try RedisEnvelope(bytes: try Fixture.bytes(Fixture.signedTaskEnvelope)).taskMessage()
    }

    @Test func capturedSignedMessageCarriesCeleryAuthContentType() throws {
        let message = try capturedMessage()
        #expect(message.contentType == SecurePayload.contentType)
        #expect(message.contentEncoding == "utf-8")
        #expect(message.task == "math.add")
        // Without signing configured, a signed message is refused, saying what to configure.
        let problem = try #require(message.contentProblem())
        #expect(problem.exception.type == "ContentDisallowed")
        #expect(problem.reason.contains("security_key"))
    }

    @Test func onlyApplicationDataIsSigned() throws {
        #expect(try capturedMessage().isSigned)
        var message = try capturedMessage()
        message.contentType = " application/data ; charset=utf-8"
        #expect(message.isSigned)
        message.contentType = "application/json"
        #expect(!message.isSigned)
    }

    @Test func capturedPayloadDecodesToSignerSignatureAndInnerJSON() throws {
        let payload = try SecurePayload.decode(try capturedMessage().body)
        #expect(payload.signer == Self.signer)
        #expect(payload.signature.count == 256)
        #expect(payload.innerContentType == "application/json")
        #expect(payload.innerContentEncoding == "utf-8")
        #expect(payload.body == Array(Self.body.utf8))
        let split = try TaskBody(json: payload.body)
        #expect(split.argsJSON == Array("[2, 3]".utf8))
    }

    @Test func encodingACapturedPayloadGivesCelerysBytesBack() throws {
        let wire = try capturedMessage().body
        #expect(try SecurePayload.decode(wire).encoded() == wire)
    }

    @Test func capturedSignedResultDecodesToTheResultDocument() throws {
        let payload = try SecurePayload.decode(try Fixture.bytes(Fixture.signedResultSuccess))
        #expect(payload.signer == Self.signer)
        guard case .object(let doc) = try JSONParser.parse(payload.body) else { Issue.record("not an object"); return }
        #expect(doc["status"] == "SUCCESS" && doc["result"] == 5)
    }

    @Test func aBodyHoldingTheSeparatorIsKeptWhole() throws {
        let body: [UInt8] = Array("[1,".utf8) + SecurePayload.separator + Array("2]".utf8) + SecurePayload.separator
        let payload = SecurePayload(signer: "CA 1", signature: [1, 2, 3], innerContentType: "application/json", innerContentEncoding: "utf-8", body: body)
        let decoded = try SecurePayload.decode(payload.encoded())
        #expect(decoded == payload)
    }

    @Test(arguments: [
        ("not base64 at all!", "not base64"),
        ("", "fields"),
        ("YWJj", "fields"),  // "abc": one field
    ])
    func malformedPayloadsAreSecurityErrors(text: String, expected: String) {
        #expect {
            _ = try SecurePayload.decode(Array(text.utf8))
        } throws: { error in
            (error as? SecurityError)?.reason.contains(expected) == true
        }
    }

    @Test func fourFieldsAreRefused() {
        let fields = Base64.encode(Array("c2lnbmVy".utf8) + SecurePayload.separator + Array("c2ln".utf8) + SecurePayload.separator
                                   + Array("application/json".utf8) + SecurePayload.separator + Array("utf-8".utf8))
        #expect(throws: SecurityError.self) { try SecurePayload.decode(fields) }
    }

    @Test func aSignerThatIsNotBase64IsRefused() {
        let raw = Array("%%%".utf8) + SecurePayload.separator + Array("c2ln".utf8) + SecurePayload.separator
            + Array("application/json".utf8) + SecurePayload.separator + Array("utf-8".utf8) + SecurePayload.separator + Array("[]".utf8)
        #expect {
            _ = try SecurePayload.decode(Base64.encode(raw))
        } throws: { error in
            (error as? SecurityError)?.reason.contains("signer is not base64") == true
        }
    }

    /// As NIO's decoder verifier: every prefix, every single-byte change of a real capture
    /// decodes or throws; none traps (the property the fuzz target relies on).
    @Test func everyPrefixAndEveryByteFlipOfACaptureDecodesOrThrows() throws {
        let wire = try capturedMessage().body
        for n in 0...wire.count { _ = try? SecurePayload.decode(wire.prefix(n)) }
        for i in wire.indices {
            var flipped = wire
            flipped[i] ^= 0x01
            _ = try? SecurePayload.decode(flipped)
        }
        let raw = try #require(Base64.decode(wire))
        for n in stride(from: 0, through: raw.count, by: 7) { _ = try? SecurePayload.decode(Base64.encode(raw.prefix(n))) }
    }
}
