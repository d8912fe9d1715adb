import CeleryProtocol
import Logging
import Testing
@testable import FnHostAMQP

@Suite struct AMQPURLTests {
    @Test func defaultsAsKombuDoes() throws {
        let url = try AMQPURL("amqp://")
        #expect(url == AMQPURL(host: "127.0.0.1", port: 5672, virtualHost: "/", username: "guest", password: "guest"))
        #expect(try AMQPURL("amqp://localhost//").virtualHost == "/")
        #expect(try AMQPURL("pyamqp://h:1234/").port == 1234)
    }

    @Test func parsesCredentialsVirtualHostAndHeartbeat() throws {
        let url = try AMQPURL("amqp://us%40er:p%3Ass@rabbit.internal:5673/prod%2Fa?heartbeat=30")
        #expect(url.username == "us@er" && url.password == "p:ss")
        #expect(url.host == "rabbit.internal" && url.port == 5673)
        #expect(url.virtualHost == "prod/a")
        #expect(url.heartbeat == 30)
        #expect(!url.useTLS)
    }

    @Test func amqpsDefaultsToPort5671() throws {
        let url = try AMQPURL("amqps://u:p@[::1]/v")
        #expect(url.useTLS && url.port == 5671 && url.host == "::1" && url.virtualHost == "v")
    }

    @Test func descriptionAndErrorsNeverShowThePassword() throws {
        let url = try AMQPURL("amqp://user:s3cret@h:5672/v")
        #expect(url.description == "amqp://user:***@h:5672/v")
        #expect(!String(describing: url).contains("s3cret"))
        #expect(throws: AMQPURL.Error.self) { try AMQPURL("amqp://user:s3cret@h:99999/v") }
        do { _ = try AMQPURL("amqp://user:s3cret@h:99999/v") } catch { #expect(!error.description.contains("s3cret")) }
        do { _ = try AMQPURL("redis://user:s3cret@h/0") } catch { #expect(!error.description.contains("s3cret")) }
    }
}

@Suite struct AMQPTopologyTests {
    @Test func queueArgumentsComeFromConfiguration() {
        #expect(AMQPTopology().arguments(for: "q").count == 0)
        let t = AMQPTopology(maxPriority: 10, queueType: "quorum", queueArguments: ["own": ["x-max-length": 5]])
        #expect(t.arguments(for: "q") == ["x-max-priority": 10, "x-queue-type": "quorum"])
        #expect(t.arguments(for: "own") == ["x-max-length": 5])
        #expect(t.isQuorum("q") && !t.isQuorum("own"))
    }

    @Test(arguments: [(0.5, 0), (1.9, 0), (2, 1), (3.9, 1), (9, 3), (3600, 11), (1e12, 27)])
    func delayLevelNeverOvershoots(seconds: Double, level: Int) {
        #expect(AMQPTopology.delayLevel(forSeconds: seconds) == level)
        if seconds >= 1 { #expect(Double(1 << AMQPTopology.delayLevel(forSeconds: seconds)) <= seconds) }
    }

    @Test func delayQueuesDeadLetterHomeThroughTheDefaultExchange() {
        #expect(AMQPTopology.delayQueueArguments(level: 3) == ["x-message-ttl": 8000, "x-dead-letter-exchange": ""])
    }
}

@Suite struct RPCReplyTests {
    /// The properties and body Celery 5.7's worker sends (fixtures/celery-5.7/rpc_result_success.json).
    @Test func replyMatchesTheCapturedCeleryReply() throws {
        let meta = ResultMeta.success(taskId: "7d8fde61-f3ac-4854-8810-8976857e2eff", resultJSON: Array("5".utf8))
        var withReply = meta
        withReply.replyTo = "capture.reply"
        let backend = RPCResultBackend(publisher: AMQPPublisher(url: AMQPURL(), tls: .init(), heartbeat: 0, topology: .init(),
                                                               logger: .init(label: "test")))
        #expect(try backend.reply(for: meta) == nil)
        let reply = try #require(try backend.reply(for: withReply))
        #expect(reply.exchange == "" && reply.routingKey == "capture.reply")
        #expect(reply.properties == AMQPProperties(contentType: "application/json", contentEncoding: "utf-8", headers: [:], deliveryMode: 1,
                                                   priority: 0, correlationId: "7d8fde61-f3ac-4854-8810-8976857e2eff"))
        guard case .object(let doc) = try JSONParser.parse(reply.body) else { Issue.record("not an object"); return }
        #expect(doc["status"] == "SUCCESS" && doc["result"] == 5 && doc["traceback"] == .null && doc["children"] == [])
        #expect(doc["task_id"] == "7d8fde61-f3ac-4854-8810-8976857e2eff" && doc["date_done"]?.stringValue != nil)
    }
}
