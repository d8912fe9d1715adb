import CeleryProtocol
import Testing

@Suite struct KombuTypesTests {
    @Test func typeWrappersInArgsAreUnwrapped() throws {
        let args = """
            [{"__type__": "datetime", "__value__": "2026-11-25T00:16:09.621219+00:00"},
             {"__type__": "date", "__value__": "2026-11-25"},
             {"__type__": "time", "__value__": "00:16:09"},
             {"__type__": "decimal", "__value__": "3.14"},
             {"__type__": "uuid", "__value__": {"hex": "6a8885e12b95432ca7a372345e3d9d91"}},
             {"__type__": "bytes", "__value__": "hello"},
             {"__type__": "base64", "__value__": "3q2+7w=="},
             7]
            """
        let body = Array("[\(args), {}, {}]".utf8)
        let split = try TaskBody(json: body)
        #expect(try JSONParser.parse(split.argsJSON) == [
            "2026-11-25T00:16:09.621219+00:00", "2026-11-25", "00:16:09", "3.14",
            "6a8885e12b95432ca7a372345e3d9d91", "hello", "3q2+7w==", 7,
        ])
    }

    @Test func typeWrappersNestedInKwargsAreUnwrapped() throws {
        let body = Array(#"[[], {"when": {"__type__": "datetime", "__value__": "2026-01-01T00:00:00"}, "deep": [{"x": {"__type__": "decimal", "__value__": "1.5"}}]}, {}]"#.utf8)
        let split = try TaskBody(json: body)
        #expect(try JSONParser.parse(split.kwargsJSON) == .object(["when": "2026-01-01T00:00:00", "deep": [.object(["x": "1.5"])]]))
    }

    @Test func objectsThatAreNotExactlyAWrapperAreKept() throws {
        let extraKey: JSON = .object(["__type__": "decimal", "__value__": "1", "other": 2])
        #expect(KombuTypes.unwrap(extraKey) == extraKey)
        let noValue: JSON = .object(["__type__": "decimal"])
        #expect(KombuTypes.unwrap(noValue) == noValue)
    }

    @Test func bodiesWithoutWrappersKeepTheirBytes() throws {
        let args = #"[ {"__typ__": 1},  2.50 ]"#
        let split = try TaskBody(json: Array("[\(args), {}]".utf8))
        #expect(split.argsJSON == Array(args.utf8))
    }
}
