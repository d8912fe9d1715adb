import CeleryProtocol
import Testing

@Suite struct TaskBodyTests {
    @Test func argsAndKwargsAreTheExactBytesSent() throws {
        let args = #"[1, "a b" ,{"x": 1.50, "y": [ ]}, 1e3]"#
        let kwargs = #"{"k" : [true, null], "é": "\u00e9"}"#
        let body = Array(" [ \(args) ,\n\(kwargs), {\"chain\": null} ] ".utf8)
        let split = try TaskBody(json: body)
        #expect(split.argsJSON == Array(args.utf8))
        #expect(split.kwargsJSON == Array(kwargs.utf8))
    }

    @Test func twoElementBodyWithoutEmbedIsAccepted() throws {
        let split = try TaskBody(json: Array("[[], {}]".utf8))
        #expect(split.argsJSON == Array("[]".utf8))
        #expect(split.kwargsJSON == Array("{}".utf8))
    }

    @Test func encodeProducesADecodableBody() throws {
        let split = try TaskBody(json: TaskBody.encode(args: [1, "two"], kwargs: .object(["three": 3.0])))
        #expect(try JSONParser.parse(split.argsJSON) == [1, "two"])
        #expect(try JSONParser.parse(split.kwargsJSON) == .object(["three": 3.0]))
    }

    static let rejected: [String] = [
        #"{"args": [], "kwargs": {}}"#,  // not an array (protocol 1 dict)
        #""[[], {}, {}]""#,              // a string
        "",                              // nothing
        "[]",                            // wrong length
        "[[]]",                          // wrong length
        "[[], {}, {}, {}]",              // wrong length
        "[{}, {}, {}]",                  // args not an array
        #"["1, 2", {}, {}]"#,            // args not an array
        "[null, {}, {}]",                // args not an array
        "[[], [], {}]",                  // kwargs not an object
        "[[], null, {}]",                // kwargs not an object
        "[[], {}, {}] x",                // trailing garbage
        "[[1,], {}, {}]",                // invalid JSON inside
        "[[], {}, {}",                   // unterminated
    ]

    @Test(arguments: rejected)
    func malformedBodyIsUndecodable(text: String) {
        #expect {
            try TaskBody(json: Array(text.utf8))
        } throws: { error in
            (error as? MessageDecodingError)?.kind == .undecodableBody
        }
    }
}
