import CeleryProtocol
import Testing

@Suite struct MessageLimitsTests {
    @Test func aMessageAtTheLimitIsRead() {
        #expect(MessageLimits(maxMessageSize: 4096).sizeProblem(4096) == nil)
        #expect(MessageLimits().maxMessageSize == 64 << 20)
    }

    @Test func aLargerMessageIsRefusedFromItsLengthAlone() throws {
        let problem = try #require(MessageLimits(maxMessageSize: 4096).sizeProblem(4097, taskId: "t-1", taskName: "tests.big"))
        #expect(problem.kind == .tooLarge && problem.taskId == "t-1" && problem.taskName == "tests.big")
        #expect(problem.reason.contains("worker_max_message_size (4096 bytes)"))
        #expect(problem.exception.type == "DecodeError")
    }
}
