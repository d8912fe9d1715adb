/// Throw it from a task to ask for another attempt after `countdown` seconds (nil: the task's
/// retry policy decides). Past `max_retries` the call fails with `MaxRetriesExceededError`.
///
///     throw FnHostRetry(countdown: 5, reason: "upstream busy")
public struct FnHostRetry: Error, CustomStringConvertible, Sendable {
    /// Seconds to wait before the next attempt; nil uses the task's policy.
    public var countdown: Double?
    /// Why the task wants a retry (shown in the host's log and the retry's traceback).
    public var reason: String

    /// Asks for a retry after `countdown` seconds (nil: the task's policy).
    public init(countdown: Double? = nil, reason: String = "") {
        self.countdown = countdown
        self.reason = reason
    }

    /// The reason, for logs.
    public var description: String { "retry requested: \(reason)" }
}

/// Throw it from a task to fail it with a given Python exception type, for example
/// `throw TaskFailure(type: "ValueError", message: "n must be positive")`.
///
/// Any other thrown error fails the task too, with the Swift type's name as the exception type
/// (`struct EmptyInput: Error` becomes a Python class `EmptyInput`) and
/// `String(describing: error)` as the message.
public struct TaskFailure: Error, CustomStringConvertible, Sendable {
    /// The Python exception type: `ValueError`, or a dotted name such as `myapp.errors.Bad`.
    public var type: String
    /// The exception's message.
    public var message: String

    /// A failure that the producer's `AsyncResult.get()` raises as `type(message)`.
    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    /// `type: message`.
    public var description: String { "\(type): \(message)" }
}

/// Thrown by ``FnHostPlugin/task(_:options:_:)`` and the other registration methods when the
/// host refuses a task (duplicate name, bad options) or when called after init.
public struct RegistrationError: Error, CustomStringConvertible, Sendable {
    /// The task that was not registered.
    public var task: String
    /// Why.
    public var reason: String

    /// The message that `set_init_error` reports.
    public var description: String { "cannot register task \"\(task)\": \(reason)" }
}
