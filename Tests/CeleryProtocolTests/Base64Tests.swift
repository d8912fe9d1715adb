import CeleryProtocol
import Testing

@Suite struct Base64Tests {
    static let rfc4648: [(plain: String, encoded: String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test(arguments: rfc4648)
    func encodesRfc4648Vectors(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == Array(encoded.utf8))
        #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
    }

    @Test func everyByteValueAndLengthRoundTrips() {
        var generator = SeededGenerator(seed: 42)
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes, "length \(length)")
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.decode(Base64.encode(all)) == all)
    }

    @Test func missingPaddingIsTolerated() {
        #expect(Base64.decode(Array("Zg".utf8)) == Array("f".utf8))
        #expect(Base64.decode(Array("Zm8".utf8)) == Array("fo".utf8))
    }

    @Test(arguments: ["Z", "Zm9vY", "Zg===", "Zm9v!", "Zm 9v", "Zg==Zg==", "Zm9v\n", "-_-_", "Zg=a"])
    func invalidBase64IsRejected(text: String) {
        #expect(Base64.decode(Array(text.utf8)) == nil)
    }

    @Test func contiguousAndNonContiguousInputDecodeAlike() {
        for (plain, encoded) in Self.rfc4648 {
            #expect(Base64.decode(encoded.utf8) == Array(plain.utf8))  // contiguous (native String)
            #expect(Base64.decode(Array(encoded.utf8).lazy.map { $0 }) == Array(plain.utf8))  // not contiguous
        }
        #expect(Base64.decode("Zm9v!".utf8.lazy.map { $0 }) == nil)
    }

    @Test func nonAsciiBytesAreRejected() {
        #expect(Base64.decode([0x5A, 0x67, 0xFF, 0x3D]) == nil)
        #expect(Base64.decode([0x80, 0x80, 0x80, 0x80]) == nil)
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
