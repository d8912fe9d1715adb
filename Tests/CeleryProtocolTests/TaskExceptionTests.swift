import CeleryProtocol
import Testing

@Suite struct TaskExceptionTests {
    static let mappings: [(given: String, type: String, module: String)] = [
        ("ZeroDivisionError", "ZeroDivisionError", "builtins"),
        ("ValueError", "ValueError", "builtins"),
        ("TypeError", "TypeError", "builtins"),
        ("WorkerLostError", "WorkerLostError", "billiard.exceptions"),
        ("TimeLimitExceeded", "TimeLimitExceeded", "billiard.exceptions"),
        ("NotRegistered", "NotRegistered", "celery.exceptions"),
        ("MaxRetriesExceededError", "MaxRetriesExceededError", "celery.exceptions"),
        ("DecodeError", "DecodeError", "kombu.exceptions"),
        ("myapp.errors.Bad", "Bad", "myapp.errors"),
        ("  myapp.Bad ", "Bad", "myapp"),
        ("EmptyInput", "EmptyInput", "fnhost"),
        ("", "Exception", "builtins"),
        // A trailing or leading dot is not a module path: the whole name is kept.
        ("Bad.", "Bad.", "fnhost"),
        (".Bad", ".Bad", "fnhost"),
    ]

    @Test(arguments: mappings)
    func pluginTypeMapsToPythonModule(given: String, type: String, module: String) {
        let e = TaskException(pluginType: given, message: "m")
        #expect(e.type == type)
        #expect(e.module == module)
        #expect(e.message == "m")
    }

    @Test func jsonIsCeleryExceptionDict() {
        let e = TaskException(pluginType: "ZeroDivisionError", message: "division by zero")
        #expect(e.json == .object(["exc_type": "ZeroDivisionError", "exc_message": ["division by zero"], "exc_module": "builtins"]))
    }

    @Test func workerLostUsesBilliardWording() {
        let e = TaskException.workerLost("signal 11 (SIGSEGV)")
        #expect(e.module == "billiard.exceptions")
        #expect(e.message == "Worker exited prematurely: signal 11 (SIGSEGV).")
    }
}
