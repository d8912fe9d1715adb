// Text.swift: the example Swift plugin for fnhost, built with FnHostKit into libtext.so.
//
//     make functions        (or: swift package --allow-writing-to-package-directory build-functions)
//
// From Python:  app.send_task("text.upper", args=["hello"]).get()  ->  "HELLO"
import FnHostKit

/// Thrown by text.require_nonempty. A thrown error fails the call with the Swift type's name as
/// the exception type, so the producer's `.get()` raises a class named `EmptyInput`.
struct EmptyInput: Error, CustomStringConvertible {
    var description: String { "the input string is empty" }
}

/// The result of text.echo_context, encoded as {"task_id": ..., "task_name": ..., "retries": ...}.
struct ContextInfo: Encodable {
    var taskID: String
    var taskName: String
    var retries: Int

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", taskName = "task_name", retries
    }
}

/// The plugin's entry point: fnhost calls it once per process that loads libtext.so.
@_cdecl("fnhost_plugin_init")
public func fnhostPluginInit(_ api: UnsafePointer<fnhost_api>?, _ registry: OpaquePointer?) -> Int32 {
    FnHostPlugin.initialize(api: api, registry: registry) { plugin in
        // Arguments are decoded from the call's JSON by the closure's parameter types; a wrong
        // count or type fails the call with TypeError. The result is encoded back to JSON.
        try plugin.task("text.upper") { (s: String) in s.uppercased() }

        try plugin.task("text.wordcount") { (s: String) -> Int in
            s.split(whereSeparator: \.isWhitespace).count
        }

        try plugin.task("text.require_nonempty") { (s: String) throws -> String in
            guard !s.isEmpty else { throw EmptyInput() }
            return s
        }

        // A closure whose first parameter is a TaskContext gets the call's context.
        try plugin.task("text.echo_context") { (context: TaskContext) in
            ContextInfo(taskID: context.taskID, taskName: context.taskName, retries: context.retries)
        }
    }
}
