/// An exception as Celery encodes it in a result (celery-protocol.md §4.2):
/// `{"exc_type": "ZeroDivisionError", "exc_message": ["division by zero"], "exc_module": "builtins"}`.
///
/// The module is chosen so that Python's `exception_to_python` rebuilds the right class:
/// Python built-in exceptions map to `builtins`, Celery's, billiard's and kombu's to their
/// modules, a dotted name `myapp.errors.Bad` keeps its module, and any other name gets the
/// module `fnhost`, which the client does not have loaded, so it makes up a class of that name
/// (users catch it by name), never a non-exception object.
public struct TaskException: Error, Sendable, Equatable, CustomStringConvertible {
    public let type: String
    public let module: String
    public let message: String

    public init(type: String, module: String, message: String) {
        self.type = type
        self.module = module
        self.message = message
    }

    /// The exception a plugin names with `set_error(call, excType, message)`.
    public init(pluginType: String, message: String) {
        let name = pluginType.trimmingCharacters(in: " ")
        if let dot = name.lastIndex(of: "."), dot != name.startIndex, name.index(after: dot) != name.endIndex {
            self.init(type: String(name[name.index(after: dot)...]), module: String(name[..<dot]), message: message)
        } else if name.isEmpty {
            self.init(type: "Exception", module: "builtins", message: message)
        } else if Self.pythonBuiltins.contains(name) {
            self.init(type: name, module: "builtins", message: message)
        } else if let module = Self.knownModules[name] {
            self.init(type: name, module: module, message: message)
        } else {
            self.init(type: name, module: "fnhost", message: message)
        }
    }

    /// `{"exc_type", "exc_message": [message], "exc_module"}`.
    public var json: JSON {
        .object(["exc_type": .string(type), "exc_message": .array([.string(message)]), "exc_module": .string(module)])
    }

    /// Python's repr-like `Type('message')`, for logs and events.
    public var description: String { "\(type)(\(String(reflecting: message)))" }

    static let pythonBuiltins: Set<String> = [
        "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BlockingIOError",
        "BrokenPipeError", "BufferError", "ChildProcessError", "ConnectionAbortedError", "ConnectionError",
        "ConnectionRefusedError", "ConnectionResetError", "EOFError", "EnvironmentError", "Exception",
        "FileExistsError", "FileNotFoundError", "FloatingPointError", "IOError", "ImportError",
        "IndexError", "InterruptedError", "IsADirectoryError", "KeyError", "LookupError", "MemoryError",
        "ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplementedError", "OSError",
        "OverflowError", "PermissionError", "ProcessLookupError", "RecursionError", "ReferenceError",
        "RuntimeError", "SystemError", "TimeoutError", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
        "UnicodeEncodeError", "UnicodeError", "ValueError", "ZeroDivisionError",
    ]

    static let knownModules: [String: String] = [
        "NotRegistered": "celery.exceptions", "MaxRetriesExceededError": "celery.exceptions",
        "TaskRevokedError": "celery.exceptions", "Retry": "celery.exceptions", "Reject": "celery.exceptions",
        "ChordError": "celery.exceptions", "TimeoutError_": "celery.exceptions", "InvalidTaskError": "celery.exceptions",
        "WorkerLostError": "billiard.exceptions", "TimeLimitExceeded": "billiard.exceptions",
        "SoftTimeLimitExceeded": "billiard.exceptions",
        "DecodeError": "kombu.exceptions", "ContentDisallowed": "kombu.exceptions", "EncodeError": "kombu.exceptions",
    ]

    /// `NotRegistered('<name>')`, what Celery stores for an unknown task name.
    public static func notRegistered(_ name: String) -> TaskException {
        TaskException(type: "NotRegistered", module: "celery.exceptions", message: name)
    }

    /// `WorkerLostError`, with billiard's wording.
    public static func workerLost(_ how: String) -> TaskException {
        TaskException(type: "WorkerLostError", module: "billiard.exceptions", message: "Worker exited prematurely: \(how).")
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(self.drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
