import CeleryProtocol

/// A task accepted for execution: the delivery, its decoded message, the function that runs it
/// and the limits that apply, merged from the function's options and the message's headers.
/// Immutable; a class so that holding it in the dispatcher's tables and passing it between
/// threads retains one reference instead of copying every field of the message.
public final class TaskRequest: Sendable {
    public let delivery: Delivery
    public let message: TaskMessage
    public let function: RegisteredFunction
    /// Hard and soft limits in seconds: the `timelimit` header beats the task's options.
    public let hardTimeLimit: Double?
    public let softTimeLimit: Double?
    /// Whether a result is stored: the `ignore_result` header, else the task's option.
    public let storesResult: Bool

    public init(delivery: Delivery, message: TaskMessage, function: RegisteredFunction) {
        self.delivery = delivery
        self.message = message
        self.function = function
        self.hardTimeLimit = message.timeLimit.hard ?? function.options.timeLimit
        self.softTimeLimit = message.timeLimit.soft ?? function.options.softTimeLimit
        self.storesResult = !(message.ignoreResult ?? function.options.ignoreResult)
    }

    public var id: String { message.id }
    public var name: String { message.task }
}

/// Runs task requests somewhere (worker processes, or inline in tests).
public protocol TaskExecutor: AnyObject, Sendable {
    /// Starts `request` and calls `completion` exactly once with its outcome, from any thread.
    /// The dispatcher never has more requests running than its concurrency allows.
    func execute(_ request: TaskRequest, completion: @escaping @Sendable (TaskOutcome) -> Void)
}
