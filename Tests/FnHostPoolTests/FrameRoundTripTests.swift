import CeleryProtocol
import FnHostCore
import FnHostIPC
import Testing

@Suite struct FrameRoundTripTests {
    @Test(arguments: FrameSamples.frames)
    func frameDecodesToItself(frame: Frame) throws {
        let bytes = frame.encoded()
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        #expect(try decoder.next() == frame)
        #expect(try decoder.next() == nil)
    }

    @Test(arguments: FrameSamples.frames)
    func lengthPrefixCountsEverythingAfterIt(frame: Frame) {
        let bytes = frame.encoded()
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        #expect(length == bytes.count - 4)
    }

    @Test func everyOutcomeCaseIsCovered() {
        var seen: Set<String> = []
        for outcome in FrameSamples.outcomes {
            switch outcome {
            case .success: seen.insert("success")
            case .failure: seen.insert("failure")
            case .retry: seen.insert("retry")
            case .rejected: seen.insert("rejected")
            case .workerLost: seen.insert("workerLost")
            case .timeLimitExceeded: seen.insert("timeLimitExceeded")
            }
        }
        #expect(seen.count == 6)
    }

    @Test func largeBodyRoundTrips() throws {
        let body = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = Frame.run(.init(taskId: "big", taskName: "big", retries: 1, softTimeLimit: nil, body: body))
        var decoder = FrameDecoder()
        decoder.feed(frame.encoded())
        #expect(try decoder.next() == frame)
    }
}
