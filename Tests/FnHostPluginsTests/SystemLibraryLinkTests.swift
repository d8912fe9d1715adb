import CHiredis
import CRabbitMQ
import Testing

/// The system library targets link and their functions answer.
@Suite struct SystemLibraryLinkTests {
    @Test func rabbitmqCLibraryAnswersItsVersion() throws {
        let version = String(cString: try #require(amqp_version()))
        #expect(version.split(separator: ".").count >= 2)
        #expect(amqp_version_number() > 0)
    }

    @Test func hiredisReaderParsesAReply() throws {
        let reader = try #require(redisReaderCreate())
        defer { redisReaderFree(reader) }
        let input = "+PONG\r\n"
        #expect(redisReaderFeed(reader, input, input.utf8.count) == REDIS_OK)
        var reply: UnsafeMutableRawPointer?
        #expect(redisReaderGetReply(reader, &reply) == REDIS_OK)
        let typed = try #require(reply?.assumingMemoryBound(to: redisReply.self))
        defer { freeReplyObject(reply) }
        #expect(typed.pointee.type == REDIS_REPLY_STATUS)
        #expect(String(cString: typed.pointee.str) == "PONG")
    }
}
