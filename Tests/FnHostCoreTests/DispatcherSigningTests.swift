import CeleryProtocol
import FnHostCore
import Testing

/// A stand-in for the OpenSSL serializer at the `MessageSigning` seam (FnHostSecurityTests
/// test the real one): the "signature" is the body reversed, and only `trusted` signs.
struct ReversingSigner: MessageSigning {
    var name = "trusted"

    func verify(_ payload: [UInt8]) throws(SecurityError) -> SecurePayload {
        let decoded = try SecurePayload.decode(payload)
        guard decoded.signer == "trusted" else { throw SecurityError("Unknown certificate: '\(decoded.signer)'") }
        guard decoded.signature == decoded.body.reversed() else { throw SecurityError("Bad signature: test") }
        return decoded
    }

    func sign(_ body: [UInt8], contentType: String, contentEncoding: String) throws(SecurityError) -> [UInt8] {
        SecurePayload(signer: name, signature: body.reversed(), innerContentType: contentType, innerContentEncoding: contentEncoding, body: body).encoded()
    }
}

@Suite struct DispatcherSigningTests {
    /// What each run saw: its content type and body.
    final class Seen: @unchecked Sendable {
        private let lock = ConditionLock()
        private var seen: [(contentType: String, body: [UInt8])] = []
        func add(_ request: TaskRequest) { lock.withLock { seen.append((request.message.contentType, request.message.body)) } }
        var all: [(contentType: String, body: [UInt8])] { lock.withLock { seen } }
    }

    func host(_ handler: @escaping InlineExecutor.Handler) throws -> TestHost {
        try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": handler], signing: ReversingSigner())
    }

    @Test func aSignedMessageRunsWithTheBodyItSigned() throws {
        let seen = Seen()
        let host = try host { seen.add($0); return .success(resultJSON: Array("5".utf8)) }
        host.start()
        defer { host.stop() }
        let plain = try taskMessage(id: "s-1", task: "math.add", args: [2, 3])
        host.send(try ReversingSigner().sealed(plain))
        #expect(resultValue(host.broker.waitForResult("s-1", timeout: 10)) == 5)
        #expect(seen.all.count == 1)
        #expect(seen.all.first?.contentType == "application/json" && seen.all.first?.body == plain.body)
        #expect(host.broker.deadLettered.isEmpty)
    }

    @Test(arguments: [
        ("unsigned", "SecurityError: unsigned message refused"),
        ("stranger", "SecurityError: Unknown certificate: 'stranger'"),
        ("tampered", "SecurityError: Bad signature"),
    ])
    func anUntrustedMessageIsDeadLetteredNeverRunAndStoresNothing(kind: String, reason: String) throws {
        let seen = Seen()
        let host = try host { seen.add($0); return .success(resultJSON: Array("5".utf8)) }
        host.start()
        defer { host.stop() }
        let plain = try taskMessage(id: "u-1", task: "math.add", args: [2, 3])
        var message = plain
        switch kind {
        case "stranger": message = try ReversingSigner(name: "stranger").sealed(plain)
        case "tampered":
            message = try ReversingSigner().sealed(plain)
            var payload = try SecurePayload.decode(message.body)
            payload.body = TaskBody.encode(args: [2, 4])
            message.body = payload.encoded()
        default: break
        }
        host.send(message)
        #expect(eventually { host.broker.deadLettered.count == 1 })
        host.settle()
        #expect(host.broker.deadLettered.first?.reason.hasPrefix(reason) == true)
        #expect(host.broker.result("u-1") == nil)
        #expect(seen.all.isEmpty)
        #expect(host.broker.unackedCount == 0)
        // The host serves on.
        host.send(try ReversingSigner().sealed(try taskMessage(id: "u-2", task: "math.add", args: [1, 1])))
        #expect(host.broker.waitForResult("u-2", timeout: 10) != nil)
    }

    @Test func anUndecodableMessageWithAnIdStoresNoResultWhenSigningIsOn() throws {
        let host = try host { _ in .success(resultJSON: Array("5".utf8)) }
        host.start()
        defer { host.stop() }
        var message = try taskMessage(id: "bad-1", task: "math.add", args: [2, 3])
        message.headers["retries"] = "many"  // a header of the wrong type: undecodable, id readable
        host.broker.sendRaw(RedisEnvelope.encode(message, queue: "math.add", deliveryTag: "t-bad"), to: "math.add")
        #expect(eventually { host.broker.deadLettered.count == 1 })
        host.settle()
        #expect(host.broker.deadLettered.first?.reason.hasPrefix("DecodeError") == true)
        #expect(host.broker.result("bad-1") == nil)
    }

    @Test func anUnsignedRedeliveryOfASucceededIdIsDeadLetteredNotSkipped() throws {
        let host = try host { _ in .success(resultJSON: Array("5".utf8)) }
        host.start()
        defer { host.stop() }
        let message = try taskMessage(id: "d-1", task: "math.add", args: [2, 3])
        host.dispatcher.received([delivery(of: message, queue: "math.add", tag: "t-d1")], alreadySucceeded: ["d-1"])
        #expect(eventually { host.broker.deadLettered.count == 1 })
        #expect(host.broker.deadLettered.first?.reason.hasPrefix("SecurityError: unsigned message refused") == true)
    }

    @Test func aRetryIsRepublishedSignedAndRunsAgain() throws {
        let seen = Seen()
        let host = try host { request in
            seen.add(request)
            return request.message.retries == 0 ? .retry(countdown: 0, reason: "again") : .success(resultJSON: Array("5".utf8))
        }
        host.start()
        defer { host.stop() }
        host.send(try ReversingSigner().sealed(try taskMessage(id: "r-1", task: "math.add", args: [2, 3])))
        #expect(eventually { host.broker.result("r-1")?.status == .success })
        #expect(seen.all.count == 2 && seen.all.allSatisfy { $0.contentType == "application/json" })
        #expect(host.broker.deadLettered.isEmpty)
    }
}
