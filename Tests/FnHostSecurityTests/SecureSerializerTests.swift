import CeleryProtocol
import FnHostCore
import FnHostSecurity
import Testing

/// Verification and signing with OpenSSL, against a signature a real Celery 5.7 producer made.
@Suite struct SecureSerializerTests {
    func serializer(key: String = Fixture.key, password: String? = nil) throws -> SecureSerializer {
        try SecureSerializer(SecuritySettings(key: try Fixture.path(key), keyPassword: password, certificate: try Fixture.path(Fixture.certificate),
                                              certStore: try Fixture.path(Fixture.certificate)))
    }

    func capturedMessage() throws -> TaskMessage {
        try RedisEnvelope(bytes: try Fixture.bytes(Fixture.signedTaskEnvelope)).taskMessage()
    }

    func reason(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as SecurityError { return error.reason } catch { return "\(error)" }
        return nil
    }

    @Test func certificateIdIsCelerysIssuerAndSerial() throws {
        let s = try serializer()
        #expect(s.certificate.id == Fixture.signerId)
        #expect(s.store.ids == [Fixture.signerId])
        #expect(!s.certificate.hasExpired)
    }

    @Test func aSignatureMadeByCeleryVerifies() throws {
        let opened = try serializer().opened(try capturedMessage())
        #expect(opened.contentType == "application/json")
        #expect(opened.body == Array(#"[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#.utf8))
        #expect(opened.task == "math.add")
    }

    @Test func aTamperedBodyIsABadSignature() throws {
        var payload = try SecurePayload.decode(try capturedMessage().body)
        payload.body = Array(#"[[2, 4], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#.utf8)
        let why = reason { _ = try serializer().verify(payload.encoded()) }
        #expect(why?.hasPrefix("Bad signature") == true)
    }

    @Test func aTamperedSignatureIsABadSignature() throws {
        var payload = try SecurePayload.decode(try capturedMessage().body)
        payload.signature[10] ^= 0xFF
        #expect(reason { _ = try serializer().verify(payload.encoded()) }?.hasPrefix("Bad signature") == true)
    }

    @Test func aSignerOutsideTheStoreIsUnknown() throws {
        var payload = try SecurePayload.decode(try capturedMessage().body)
        payload.signer = "Someone Else 1"
        #expect(reason { _ = try serializer().verify(payload.encoded()) } == "Unknown certificate: 'Someone Else 1'")
    }

    @Test func anUnknownSignerIsQuotedSafelyForLogs() throws {
        var payload = try SecurePayload.decode(try capturedMessage().body)
        payload.signer = "x'\nERROR forged line\\" + String(repeating: "y", count: 500)
        let why = try #require(reason { _ = try serializer().verify(payload.encoded()) })
        #expect(!why.contains("\n") && why.hasPrefix(#"Unknown certificate: 'x\'\x0aERROR forged line\\"#))
        #expect(why.count < 260)
    }

    @Test func whatTheHostSignsVerifiesAndOpensToTheSameBody() throws {
        let s = try serializer()
        let body = Array(#"{"status": "SUCCESS", "result": 5}"#.utf8)
        let signed = try s.sign(body, contentType: "application/json", contentEncoding: "utf-8")
        let payload = try s.verify(signed)
        #expect(payload.body == body && payload.signer == Fixture.signerId && payload.innerContentType == "application/json")
    }

    @Test func sealingAMessageSignsItsBodyOnce() throws {
        let s = try serializer()
        let opened = try s.opened(try capturedMessage())
        let sealed = try s.sealed(opened)
        #expect(sealed.isSigned && sealed.contentType == "application/data")
        #expect(try s.opened(sealed).body == opened.body)
        #expect(try s.sealed(sealed).body == sealed.body)
    }

    @Test func anEncryptedKeyNeedsItsPasswordAndNeverShowsIt() throws {
        let signed = try serializer(key: Fixture.encryptedKey, password: Fixture.encryptedKeyPassword)
        #expect(try signed.verify(try signed.sign([1, 2], contentType: "application/json", contentEncoding: "utf-8")).body == [1, 2])

        let pem = String(decoding: try Fixture.bytes(Fixture.encryptedKey), as: UTF8.self)
        let secretLines = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }
        for password: String? in [nil, "wrong-password"] {
            let why = try #require(reason { _ = try serializer(key: Fixture.encryptedKey, password: password) })
            #expect(why.hasPrefix("Invalid private key"))
            #expect(why.contains("security_key_password"))
            #expect(!why.contains("fixture-password") && !why.contains("wrong-password"))
            #expect(!secretLines.contains { why.contains($0) })
        }
        #expect(!"\(SecuritySettings(key: "k", keyPassword: "hunter2", certificate: "c", certStore: "s"))".contains("hunter2"))
    }

    @Test func anUnknownDigestIsRefused() {
        #expect(throws: SecurityError.self) { _ = try Digest("md17") }
        #expect(throws: Never.self) { _ = try Digest("SHA3_256") }
    }

    @Test func aStoreThatMatchesNothingIsAnError() {
        #expect(throws: SecurityError.self) { _ = try CertStore(pattern: "/nonexistent/*.pem") }
    }
}
