/// The result document Celery's backends store and publish (celery-protocol.md §4.1):
/// `{"status", "result", "traceback", "children", "date_done", ["group_id"], ["parent_id"], "task_id"}`.
///
/// `task_id` is always present (Python's pub/sub and rpc consumers route on it); `date_done`
/// is set only for ready states. `result` is embedded as already-serialized JSON bytes, so a
/// plugin's result passes through the host without being parsed again.
public struct ResultMeta: Sendable {
    public var status: TaskState
    /// The serialized `result` value (a return value, or an exception object).
    public var resultJSON: [UInt8]
    public var traceback: String?
    public var taskId: String
    public var groupId: String?
    public var parentId: String?
    /// Epoch seconds of `date_done`; used only when the state is ready.
    public var dateDone: Double
    /// Where the rpc:// backend sends the document: the task message's `reply_to` (not part of
    /// the document itself; other backends ignore it).
    public var replyTo: String?
    /// Result tuples of what the task started (`[[id, null], null]` per task, `[[gid, null],
    /// [members]]` per group): Python's `AsyncResult.children`.
    public var children: [JSON] = []

    public init(status: TaskState, resultJSON: [UInt8], traceback: String? = nil, taskId: String,
                groupId: String? = nil, parentId: String? = nil, dateDone: Double = CeleryTime.now()) {
        self.status = status
        self.resultJSON = resultJSON
        self.traceback = traceback
        self.taskId = taskId
        self.groupId = groupId
        self.parentId = parentId
        self.dateDone = dateDone
    }

    /// A SUCCESS document with `result` as given (valid JSON bytes).
    public static func success(taskId: String, resultJSON: [UInt8], groupId: String? = nil, parentId: String? = nil) -> ResultMeta {
        ResultMeta(status: .success, resultJSON: resultJSON, taskId: taskId, groupId: groupId, parentId: parentId)
    }

    /// A FAILURE (or REVOKED/RETRY) document for `exception`.
    public static func exception(_ exception: TaskException, state: TaskState = .failure, taskId: String, traceback: String? = nil,
                                 groupId: String? = nil, parentId: String? = nil) -> ResultMeta {
        ResultMeta(status: state, resultJSON: JSONWriter.bytes(exception.json), traceback: traceback, taskId: taskId,
                   groupId: groupId, parentId: parentId)
    }

    /// The serialized document.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(resultJSON.count + 160)
        out.append(contentsOf: #"{"status":""#.utf8)
        out.append(contentsOf: status.rawValue.utf8)
        out.append(contentsOf: #"","result":"#.utf8)
        out.append(contentsOf: resultJSON)
        out.append(contentsOf: #","traceback":"#.utf8)
        if let traceback { JSONWriter.writeString(traceback, into: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","children":"#.utf8)
        JSONWriter.write(.array(children), into: &out)
        out.append(contentsOf: #","date_done":"#.utf8)
        if status.isReady { JSONWriter.writeString(CeleryTime.isoformat(dateDone), into: &out) } else { out.append(contentsOf: "null".utf8) }
        if let groupId {
            out.append(contentsOf: #","group_id":"#.utf8)
            JSONWriter.writeString(groupId, into: &out)
        }
        if let parentId {
            out.append(contentsOf: #","parent_id":"#.utf8)
            JSONWriter.writeString(parentId, into: &out)
        }
        out.append(contentsOf: #","task_id":"#.utf8)
        JSONWriter.writeString(taskId, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
