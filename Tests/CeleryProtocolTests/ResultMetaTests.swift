import CeleryProtocol
import Testing

@Suite struct ResultMetaTests {
    @Test func successDocumentParsesLikeCapturedCeleryResult() throws {
        let golden = try JSONParser.parse(try Fixture.bytes(Fixture.resultSuccess))
        let dateText = try #require(golden["date_done"]?.stringValue)
        let dateDone = try #require(CeleryTime.parse(dateText))
        let meta = ResultMeta(status: .success, resultJSON: Array("5".utf8), taskId: "6a8885e1-2b95-432c-a7a3-72345e3d9d91",
                              dateDone: dateDone)
        let ours = try JSONParser.parse(meta.encoded())
        #expect(ours == golden)
        #expect(ours["date_done"] == "2026-11-25T00:16:09.621219+00:00")
        #expect(ours["children"] == [])
    }

    @Test func failureDocumentParsesLikeCapturedCeleryResult() throws {
        let golden = try JSONParser.parse(try Fixture.bytes(Fixture.resultFailure))
        let traceback = try #require(golden["traceback"]?.stringValue)
        let dateText = try #require(golden["date_done"]?.stringValue)
        let dateDone = try #require(CeleryTime.parse(dateText))
        let exception = TaskException(type: "TypeError", module: "builtins", message: #"can only concatenate str (not "int") to str"#)
        var meta = ResultMeta.exception(exception, taskId: "6e0a4df3-ea8c-4c44-b0a7-427182d2b4c9", traceback: traceback)
        meta.dateDone = dateDone
        let ours = try JSONParser.parse(meta.encoded())
        #expect(ours == golden)
        #expect(ours["status"] == "FAILURE")
        #expect(ours["result"] == golden["result"])
        #expect(ours["traceback"] == .string(traceback))
        #expect(ours["date_done"] == "2026-11-25T00:16:12.651671+00:00")
    }

    @Test func notReadyStateHasNullDateDone() throws {
        let meta = ResultMeta.exception(TaskException(type: "Retry", module: "celery.exceptions", message: "later"), state: .retry, taskId: "r")
        let doc = try JSONParser.parse(meta.encoded())
        #expect(doc["status"] == "RETRY")
        #expect(doc["date_done"] == .null)
        #expect(doc["task_id"] == "r")
    }

    @Test func groupAndParentIdsAppearOnlyWhenSet() throws {
        let with = try JSONParser.parse(ResultMeta.success(taskId: "t", resultJSON: Array("null".utf8), groupId: "g", parentId: "p").encoded())
        #expect(with["group_id"] == "g")
        #expect(with["parent_id"] == "p")
        let without = try JSONParser.parse(ResultMeta.success(taskId: "t", resultJSON: Array("null".utf8)).encoded())
        #expect(without.objectValue?.keys.contains("group_id") == false)
        #expect(without.objectValue?.keys.contains("parent_id") == false)
    }

    @Test func taskIdAndTracebackAreEscaped() throws {
        let meta = ResultMeta.exception(TaskException(type: "E", module: "m", message: "\"quoted\"\n"), taskId: "id\"with\\quote",
                                        traceback: "line 1\n\tline \"2\"\u{1}")
        let doc = try JSONParser.parse(meta.encoded())
        #expect(doc["task_id"] == "id\"with\\quote")
        #expect(doc["traceback"] == "line 1\n\tline \"2\"\u{1}")
        #expect(doc["result"]?["exc_message"] == ["\"quoted\"\n"])
    }
}
