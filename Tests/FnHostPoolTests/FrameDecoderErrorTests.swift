import FnHostIPC
import Testing

@Suite struct FrameDecoderErrorTests {
    func u32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }

    /// A frame with `payload` after a correct length prefix.
    func frame(_ payload: [UInt8]) -> [UInt8] { u32(UInt32(payload.count)) + payload }

    /// The description of the error decoding `bytes` gives, or nil when it gives none.
    func decodeError(_ bytes: [UInt8]) -> String? {
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        do {
            _ = try decoder.next()
            return nil
        } catch {
            return String(describing: error)
        }
    }

    @Test func lengthAboveMaxLengthIsAnErrorWithoutWaitingForTheBytes() {
        #expect(decodeError(u32(UInt32(Frame.maxLength + 1))) != nil)
        #expect(decodeError(u32(UInt32.max) + [10]) != nil)
        // At the limit the decoder waits for the rest instead.
        #expect(decodeError(u32(UInt32(Frame.maxLength))) == nil)
    }

    @Test func zeroLengthIsAnError() {
        #expect(decodeError(u32(0)) != nil)
    }

    @Test func truncatedFieldIsAnError() throws {
        // An outcome frame whose second field claims 100 bytes but has 3.
        let payload: [UInt8] = [12] + u32(1) + [UInt8(ascii: "t")] + u32(100) + Array("suc".utf8)
        let error = try #require(decodeError(frame(payload)))
        #expect(error.contains("truncated field"))
    }

    @Test func truncatedFieldLengthIsAnError() throws {
        let payload: [UInt8] = [2, 0x01, 0x00]
        let error = try #require(decodeError(frame(payload)))
        #expect(error.contains("truncated field length"))
    }

    @Test(arguments: [
        [0] as [UInt8],                                       // unknown kind
        [99],                                                 // unknown kind
        [2] + [0, 0, 0, 0],                                   // shutdown with a field
        [10],                                                 // ready without its field
        [1, 1, 0, 0, 0, 0x41],                                // run with 1 of 5 fields
        [11, 2, 0, 0, 0, 0xC3, 0x28],                         // loadFailed reason not UTF-8
        [12, 1, 0, 0, 0, 0x74, 4, 0, 0, 0] + Array("nope".utf8),  // unknown outcome kind
    ])
    func malformedPayloadIsAnError(payload: [UInt8]) {
        #expect(decodeError(frame(payload)) != nil)
    }

    @Test func runFrameWithNonNumericRetriesIsAnError() {
        let fields: [[UInt8]] = [Array("id".utf8), Array("name".utf8), Array("many".utf8), [], []]
        let payload = [UInt8(1)] + fields.flatMap { u32(UInt32($0.count)) + $0 }
        #expect(decodeError(frame(payload)) != nil)
    }

    @Test func everyTruncationOfEveryFrameIsAnErrorOrAFrameNeverACrash() throws {
        for sample in FrameSamples.frames {
            let bytes = sample.encoded()
            let payload = Array(bytes[4...])
            for cut in 0..<payload.count {
                // The payload cut short, with a length prefix that agrees with the cut.
                var decoder = FrameDecoder()
                decoder.feed(frame(Array(payload[0..<cut])))
                _ = try? decoder.next()
            }
            // The stream cut short: never a frame, never an error, just waiting.
            for cut in 0..<bytes.count {
                var decoder = FrameDecoder()
                decoder.feed(bytes[0..<cut])
                #expect(try decoder.next() == nil)
            }
        }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SeededGenerator(seed: 99)
        for _ in 0..<2_000 {
            let count = Int.random(in: 0...64, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count >= 4 {
                // Mostly plausible lengths, so the payload decoder is exercised too.
                let n = UInt32(count - 4)
                bytes.replaceSubrange(0..<4, with: u32(n))
            }
            var decoder = FrameDecoder()
            decoder.feed(bytes)
            _ = try? decoder.next()
        }
    }
}
