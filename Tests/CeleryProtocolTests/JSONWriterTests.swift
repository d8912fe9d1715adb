import CeleryProtocol
import Testing

@Suite struct JSONWriterTests {
    static let values: [JSON] = [
        .null, true, false, 0, -1, .int(.max), .int(.min), .uint(.max),
        2.0, -0.5, 1e300, .double(.leastNonzeroMagnitude), 0.1, 1e20, 123456.789,
        "", "plain", "quote \" backslash \\ slash /", "control \u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}", "unicode é 😀 \u{2028}",
        [], [1, "two", 3.0, nil, [true]],
        .object([:]), .object(["z": 1, "a": .object(["nested": [1.5, "x"]]), "é": "ü"]),
    ]

    @Test(arguments: values)
    func writerOutputReparsesToTheSameValue(value: JSON) throws {
        let bytes = JSONWriter.bytes(value)
        #expect(try JSONParser.parse(bytes) == value)
    }

    @Test func doublesStayDoubles() throws {
        #expect(JSONWriter.string(2.0) == "2.0")
        #expect(try JSONParser.parse(JSONWriter.bytes(2.0)) == .double(2.0))
        #expect(try JSONParser.parse(JSONWriter.bytes(-3.0)) == .double(-3.0))
        #expect(try JSONParser.parse(JSONWriter.bytes(1e20)) == .double(1e20))
        #expect(JSONWriter.string(2) == "2")
    }

    @Test func nanAndInfinityAreWrittenAsPythonDoes() throws {
        #expect(JSONWriter.string(.double(.nan)) == "NaN")
        #expect(JSONWriter.string(.double(.infinity)) == "Infinity")
        #expect(JSONWriter.string(.double(-.infinity)) == "-Infinity")
        #expect(try JSONParser.parse(JSONWriter.bytes(.double(.nan))).doubleValue?.isNaN == true)
    }

    @Test func outputIsCompactAndKeepsKeyOrder() {
        #expect(JSONWriter.string(.object(["b": [1, 2], "a": nil])) == #"{"b":[1,2],"a":null}"#)
        #expect(JSONWriter.string("a\u{1}") == #""a\u0001""#)
    }

    @Test func parsedDocumentRewritesToAnEquivalentDocument() throws {
        let golden = try JSONParser.parse(try Fixture.bytes(Fixture.taskEnvelope))
        #expect(try JSONParser.parse(JSONWriter.bytes(golden)) == golden)
        #expect(JSONWriter.bytes(try JSONParser.parse(JSONWriter.bytes(golden))) == JSONWriter.bytes(golden))
    }
}
