import FnHostIPC
import Testing

/// The decoder gives the same frames whatever the read sizes (NIO's ByteToMessageDecoderVerifier idea).
@Suite struct FrameDecoderChunkingTests {
    static var stream: [UInt8] { FrameSamples.frames.flatMap { $0.encoded() } }

    func decode(_ bytes: [UInt8], chunks: (inout [UInt8]) -> [[UInt8]]) throws -> [Frame] {
        var remaining = bytes
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        for chunk in chunks(&remaining) {
            decoder.feed(chunk)
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(try decoder.next() == nil)
        return frames
    }

    @Test func allAtOnce() throws {
        #expect(try decode(Self.stream) { [$0] } == FrameSamples.frames)
    }

    @Test func byteByByte() throws {
        #expect(try decode(Self.stream) { bytes in bytes.map { [$0] } } == FrameSamples.frames)
    }

    @Test func nothingIsReturnedBeforeAFrameIsComplete() throws {
        for frame in FrameSamples.frames {
            let bytes = frame.encoded()
            var decoder = FrameDecoder()
            for (i, byte) in bytes.enumerated() {
                decoder.feed([byte])
                let next = try decoder.next()
                if i < bytes.count - 1 { #expect(next == nil) } else { #expect(next == frame) }
            }
        }
    }

    @Test(arguments: [1, 2, 3, 42, 2024, 65_535])
    func randomChunkSizes(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let expected = FrameSamples.frames
        let frames = try decode(Self.stream) { bytes in
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 0...40, using: &generator)  // empty reads too
                chunks.append(Array(bytes[i..<min(bytes.count, i + n)]))
                i += n
            }
            return chunks
        }
        #expect(frames == expected)
    }

    @Test func randomChunksAcrossTheCompactionThreshold() throws {
        // More than 1 MiB consumed makes the decoder compact its buffer; frames must survive it.
        let big = Frame.run(.init(taskId: "big", taskName: "t", retries: 0, softTimeLimit: nil, body: [UInt8](repeating: 0xAB, count: 700_000)))
        let expected = [big, .shutdown, big, big] + FrameSamples.frames
        let bytes = expected.flatMap { $0.encoded() }
        var generator = SeededGenerator(seed: 7)
        let frames = try decode(bytes) { bytes in
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 1...100_000, using: &generator)
                chunks.append(Array(bytes[i..<min(bytes.count, i + n)]))
                i += n
            }
            return chunks
        }
        #expect(frames == expected)
    }
}

/// A deterministic generator (SplitMix64) so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
