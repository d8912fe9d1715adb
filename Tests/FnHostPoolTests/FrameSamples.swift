import CeleryProtocol
import FnHostCore
import FnHostIPC

/// One frame of every kind, and an outcome frame for every `TaskOutcome` case.
enum FrameSamples {
    static let outcomes: [TaskOutcome] = [
        .success(resultJSON: Array(#"{"sum": 5, "é": [1.5, null]}"#.utf8)),
        .success(resultJSON: Array("null".utf8)),
        .failure(TaskException(type: "ZeroDivisionError", module: "builtins", message: "division by zero"), traceback: "fnhost: task\nZeroDivisionError: division by zero\n"),
        .failure(TaskException(type: "Bad", module: "myapp.errors", message: ""), traceback: nil),
        .retry(countdown: 2.5, reason: "busy"),
        .retry(countdown: nil, reason: ""),
        .retry(countdown: 0, reason: "now"),
        .rejected(MessageDecodingError(.contentDisallowed, "no pickle", taskId: "task-1")),
        .rejected(MessageDecodingError(.undecodableBody, "args (body[0]) must be a JSON array", taskId: "task-1")),
        .workerLost(how: "signal 11 (SIGSEGV)"),
        .timeLimitExceeded(seconds: 1.5),
        .timeLimitExceeded(seconds: 30),
    ]

    static let frames: [Frame] = [
        .run(.init(taskId: "task-1", taskName: "math.add", retries: 0, softTimeLimit: nil, body: Array("[[2, 3], {}, {}]".utf8))),
        .run(.init(taskId: "task-2", taskName: "bytes", retries: 7, softTimeLimit: 0.25, body: [0x00, 0xFF, 0xFE, 0x80, 0x0A])),
        .run(.init(taskId: "", taskName: "empty", retries: 0, softTimeLimit: 12, body: [])),
        .run(.init(taskId: "task-3", taskName: "big", retries: 0, softTimeLimit: nil, body: Array("[]".utf8), memoryLimit: 64 << 20)),
        .shutdown,
        .ready(registryJSON: Array(#"{"functions": [{"name": "math.add"}]}"#.utf8)),
        .ready(registryJSON: []),
        .loadFailed(reason: "dlopen: libmissing.so: cannot open shared object file"),
        .loadFailed(reason: "unicode é 😀"),
    ] + outcomes.map { .outcome(taskId: "task-1", $0) }
}
