import CeleryProtocol
import Testing

@Suite struct JSONParserTests {
    @Test func acceptsPythonNaNAndInfinity() throws {
        let value = try JSONParser.parse("[NaN, Infinity, -Infinity]")
        #expect(value[0]?.doubleValue?.isNaN == true)
        #expect(value[1] == .double(.infinity))
        #expect(value[2] == .double(-.infinity))
    }

    @Test func integersBeyondInt64BecomeUIntThenDouble() throws {
        #expect(try JSONParser.parse("9223372036854775807") == .int(.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(.min))
        #expect(try JSONParser.parse("9223372036854775808") == .uint(9_223_372_036_854_775_808))
        #expect(try JSONParser.parse("18446744073709551615") == .uint(.max))
        #expect(try JSONParser.parse("18446744073709551616") == .double(18_446_744_073_709_551_616))
        #expect(try JSONParser.parse("-9223372036854775809") == .double(-9_223_372_036_854_775_808.0))
        #expect(try JSONParser.parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
    }

    @Test func numbersWithFractionOrExponentAreDoubles() throws {
        #expect(try JSONParser.parse("2.0") == .double(2))
        #expect(try JSONParser.parse("1e3") == .double(1000))
        #expect(try JSONParser.parse("-0.5E-1") == .double(-0.05))
        #expect(try JSONParser.parse("0") == .int(0))
    }

    @Test(arguments: ["01", "-", "1.", ".5", "1e", "+1", "0x10", "-Inf", "nan", "tru", "nul"])
    func malformedLiteralsAreRejected(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    @Test func unicodeEscapesAndSurrogatePairsDecode() throws {
        #expect(try JSONParser.parse(#""caf\u00e9 \u00E9""#) == "café é")
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == "😀")
        #expect(try JSONParser.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == "a\"b\\c/d\u{8}\u{c}\n\r\t")
        #expect(try JSONParser.parse(#""\u0000""#) == "\u{0}")
        #expect(try JSONParser.parse("\"raw 😀 é\"") == "raw 😀 é")
    }

    @Test(arguments: [#""\ud800""#, #""\udc00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\ude00\ud83d""#, #""\ud83d\""#])
    func loneSurrogatesAreRejected(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22] as [UInt8],              // invalid byte, fast path
        [0x22, 0xC3, 0x22],                         // truncated 2-byte sequence
        [0x22, 0xED, 0xA0, 0x80, 0x22],             // UTF-8-encoded surrogate
        [0x22, 0xC0, 0xAF, 0x22],                   // overlong
        [0x22, 0x5C, 0x6E, 0xFF, 0x22],             // invalid byte after an escape (slow path)
    ])
    func invalidUTF8IsRejected(bytes: [UInt8]) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(bytes) }
    }

    @Test(arguments: ["\"a\u{1}b\"", "\"tab\there\"", "\"new\nline\"", #""\x""#, #""\u12G4""#, "\"open"])
    func badStringsAreRejected(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    @Test func hundredThousandNestedArraysIsAnErrorNotACrash() {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(deep) }
        let deepObjects = Array(String(repeating: #"{"a":"#, count: 100_000).utf8)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(deepObjects) }
        let balanced = Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(balanced) }
    }

    @Test func depthLimitIsExact() throws {
        let limit = JSONParser.defaultMaxDepth
        let ok = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(tooDeep) }
    }

    @Test(arguments: ["{} x", "1 2", "[]]", "nullx", "\"a\"\"b\"", "{}\u{0}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1: 2}", "", "   "])
    func trailingGarbageAndBadStructureAreRejected(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    @Test func surroundingWhitespaceIsAllowed() throws {
        #expect(try JSONParser.parse(" \n\t{ \"a\" : [ 1 , 2 ] } \r\n") == .object(["a": [1, 2]]))
    }

    @Test func objectsKeepKeyOrder() throws {
        let value = try JSONParser.parse(#"{"z": 1, "a": 2, "m": 3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
    }

    @Test func errorsCarryAByteOffset() {
        #expect {
            try JSONParser.parse("[1, 2, x]")
        } throws: { error in
            (error as? JSONParser.Error)?.offset == 7
        }
    }
}

@Suite struct JSONDuplicateKeyTests {
    @Test func aRepeatedKeyKeepsItsLastValueAsPythonDoes() throws {
        let value = try JSONParser.parse(#"{"id": "first", "task": "t", "id": "last"}"#)
        #expect(value["id"] == .string("last"))
        #expect(value.objectValue?.keys == ["id", "task"])
    }

    /// Python's `json.loads`: a key given twice keeps its last value, at the place of its first
    /// occurrence. Small objects (pairwise check) and large ones (hashed) alike.
    @Test(arguments: [2, 19, 32, 33, 100])
    func aRepeatedKeyKeepsItsLastValueAtItsFirstPlace(keys: Int) throws {
        var members = (0..<keys).map { "\"key\($0)\": \($0)" }
        members.append("\"key0\": \"last\"")
        let object = try #require(try JSONParser.parse("{" + members.joined(separator: ", ") + "}").objectValue)
        #expect(object.count == keys)
        #expect(object.keys == (0..<keys).map { "key\($0)" })
        #expect(object["key0"] == .string("last"))
        #expect(object["key\(keys - 1)"] == .int(Int64(keys - 1)))
    }

    @Test(arguments: [3, 19, 40])
    func distinctKeysOfEqualLengthAreKept(keys: Int) throws {
        // Same length, differing only in the last byte: the length check alone must not decide.
        let members = (0..<keys).map { "\"k\(String(format2($0)))\": \($0)" }
        let object = try #require(try JSONParser.parse("{" + members.joined(separator: ", ") + "}").objectValue)
        #expect(object.count == keys)
    }

    /// Strings are scanned eight bytes at a time up to the first byte that needs a look: a byte
    /// of each kind, at every offset around the word boundaries, is still seen.
    @Test func everyByteThatEndsThePlainScanIsSeenAtEveryOffset() throws {
        for length in 0..<40 {
            for at in 0...length {
                let before = String(repeating: "a", count: at), after = String(repeating: "b", count: length - at)
                #expect(try JSONParser.parse("\"\(before)\"") == .string(before))
                #expect(try JSONParser.parse("\"\(before)\\n\(after)\"") == .string(before + "\n" + after))
                #expect(try JSONParser.parse("\"\(before)\u{e9}\(after)\"") == .string(before + "\u{e9}" + after))
                #expect(try JSONParser.parse("\"\(before)~\u{7f}\(after)\"") == .string(before + "~\u{7f}" + after))
                #expect(throws: JSONParser.Error.self) { try JSONParser.parse("\"\(before)\u{1f}\(after)\"") }
                #expect(throws: JSONParser.Error.self) { try JSONParser.parse(Array("\"\(before)".utf8) + [0xFF] + Array("\(after)\"".utf8)) }
                #expect(throws: JSONParser.Error.self) { try JSONParser.parse("\"\(before)\(after)") }
                // The closing quote at every offset, then more data: an error at that data.
                #expect(throws: JSONParser.Error.self) { try JSONParser.parse("\"\(before)\"\(after)\"") }
            }
        }
    }
}

/// `n` as two digits.
private func format2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
