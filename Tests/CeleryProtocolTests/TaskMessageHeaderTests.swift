import CeleryProtocol
import Testing

@Suite struct TaskMessageHeaderTests {
    @Test func timelimitHeaderIsHardThenSoft() throws {
        let message = try jsonMessage(headers(["timelimit": [30, 20]]))
        #expect(message.timeLimit.hard == 30)
        #expect(message.timeLimit.soft == 20)
    }

    @Test func timelimitHeaderHalvesMayBeNull() throws {
        let message = try jsonMessage(headers(["timelimit": [nil, 2.5]]))
        #expect(message.timeLimit.hard == nil)
        #expect(message.timeLimit.soft == 2.5)
    }

    @Test func etaAndExpiresAreParsedToEpochSeconds() throws {
        let message = try jsonMessage(headers(["eta": "1970-01-01T00:01:00+00:00", "expires": "1970-01-01T00:02:00.5Z"]))
        #expect(message.eta == 60)
        #expect(message.expires == 120.5)
    }

    static let badHeaders: [(String, JSON)] = [
        ("retries", "1"), ("retries", -1), ("retries", 1.5),
        ("eta", 5), ("eta", "tomorrow"), ("expires", "2026-13-01T00:00:00"),
        ("timelimit", [1]), ("timelimit", "30"), ("timelimit", [-1, nil]), ("timelimit", ["30", nil]),
        ("ignore_result", "yes"), ("root_id", 3), ("parent_id", [nil]), ("group", true), ("shadow", 1),
        ("group_index", "0"), ("retries", .uint(UInt64.max)), ("timelimit", [1e308, nil]), ("timelimit", [nil, .double(.nan)]),
        ("timelimit", [1, 2, 3]), ("eta", "99999-01-01T00:00:00"), ("eta", "NaN"), ("expires", .double(.nan)),
        ("argsrepr", [1, 2]), ("kwargsrepr", .object(["a": 1])), ("origin", 5),
    ]

    @Test(arguments: badHeaders)
    func headerTypeErrorCarriesTaskIdAndName(key: String, value: JSON) {
        #expect {
            try jsonMessage(headers(id: "bad-id", task: "tests.bad", [key: value]))
        } throws: { error in
            guard let error = error as? MessageDecodingError else { return false }
            return error.kind == .malformedHeaders && error.taskId == "bad-id" && error.taskName == "tests.bad"
                && error.reason.contains("'\(key)'") && error.exception.type == "DecodeError"
        }
    }

    @Test func missingTaskNameKeepsTheTaskId() {
        var h = headers(id: "only-id")
        h["task"] = nil
        #expect {
            try jsonMessage(h)
        } throws: { error in
            let e = error as? MessageDecodingError
            return e?.kind == .malformedHeaders && e?.taskId == "only-id" && e?.taskName == nil
        }
    }

    @Test(arguments: [JSON.null, "", 7])
    func missingOrInvalidIdHasNoTaskId(id: JSON) {
        var h = headers()
        h["id"] = id
        #expect {
            try jsonMessage(h)
        } throws: { error in
            let e = error as? MessageDecodingError
            return e?.kind == .malformedHeaders && e?.taskId == nil
        }
    }

    @Test func idWithANulByteIsRefusedButKeptForTheFailure() {
        #expect {
            try jsonMessage(headers(id: "abc\u{0}def", task: "tests.nul"))
        } throws: { error in
            let e = error as? MessageDecodingError
            return e?.kind == .malformedHeaders && e?.taskId == "abc\u{0}def" && e?.reason.contains("NUL") == true
        }
    }
}
