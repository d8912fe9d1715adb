#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a running task can ask the host: who it is, whether to stop, where to log.
///
/// It is only valid while the task's closure runs: do not keep it or hand it to another
/// thread that outlives the call.
public struct TaskContext {
    let api: UnsafePointer<fnhost_api>
    let call: OpaquePointer

    /// The Celery task id of this call (a UUID string).
    public var taskID: String { string(api.pointee.task_id?(call)) }

    /// The task's registered name, e.g. `text.upper`.
    public var taskName: String { string(api.pointee.task_name?(call)) }

    /// How many times this call has been retried: 0 on the first attempt.
    public var retries: Int { Int(api.pointee.retries?(call) ?? 0) }

    /// True once the soft time limit has passed or the task was revoked: a long task should
    /// check it now and then and return (or throw) early.
    public var shouldStop: Bool { (api.pointee.should_stop?(call) ?? 0) != 0 }

    /// The positional arguments as the producer sent them: a JSON array.
    public var argumentsJSON: String { json(api.pointee.args_json, default: "[]") }

    /// The keyword arguments as the producer sent them: a JSON object.
    public var keywordArgumentsJSON: String { json(api.pointee.kwargs_json, default: "{}") }

    /// Writes `message` to the host's log, tagged with this call.
    public func log(_ level: LogLevel, _ message: String) {
        api.pointee.log?(call, level.rawValue, message)
    }

    private func string(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    private func json(
        _ getter: (@convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?) -> UnsafePointer<CChar>?)?,
        default empty: String
    ) -> String {
        var length = 0
        guard let pointer = getter?(call, &length) else { return empty }
        let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A log level, with Python's `logging` numbers.
public enum LogLevel: Int32, Sendable {
    /// Detail for debugging (10).
    case debug = 10
    /// Normal operation (20).
    case info = 20
    /// Something unexpected that the task handled (30).
    case warning = 30
    /// The task could not do something (40).
    case error = 40
    /// The plugin cannot go on (50).
    case critical = 50
}
