import CeleryProtocol

/// What happened to a task, in Celery's event vocabulary (celery-protocol.md §7): what the
/// dispatcher reports to a `TaskObserver` for metrics and Celery events.
public enum TaskEvent: Sendable {
    /// Reserved to run (`task-received`).
    case received(TaskRequest)
    /// Handed to a worker process (`task-started`).
    case started(TaskRequest)
    /// Returned; `resultJSON` is the stored result, `runtime` seconds from start to outcome.
    case succeeded(TaskRequest, resultJSON: [UInt8], runtime: Double)
    /// Failed for good (its own exception, a lost worker, a hard time limit, retries exhausted).
    case failed(TaskRequest, exception: TaskException, traceback: String?, runtime: Double)
    /// Failed or asked for a retry, and a retry copy was published.
    case retried(TaskRequest, exception: TaskException, runtime: Double)
    /// Revoked before it ran (by id, or expired), or terminated while it ran.
    case revoked(TaskRequest, expired: Bool, terminated: Bool, signum: Int32?)
    /// Refused: given back to the queue (`requeue`) or dead-lettered without running.
    case rejected(TaskRequest, requeue: Bool)
    /// A delivery that never became a request (undecodable, unregistered task): `queue` it came
    /// from, the task id and name when they could be read.
    case refused(queue: String, taskId: String?, taskName: String?)

    /// The request this event is about (`nil` for `.refused`).
    public var request: TaskRequest? {
        switch self {
        case .received(let r), .started(let r), .succeeded(let r, _, _), .failed(let r, _, _, _),
             .retried(let r, _, _), .revoked(let r, _, _, _), .rejected(let r, _):
            return r
        case .refused:
            return nil
        }
    }

    /// The event for a finished request, from its outcome and how it was settled.
    public static func finished(_ request: TaskRequest, outcome: TaskOutcome, settlement: Settlement, runtime: Double) -> TaskEvent {
        switch outcome {
        case .success(let json):
            return .succeeded(request, resultJSON: json, runtime: runtime)
        case .failure(let e, let traceback):
            if !settlement.publish.isEmpty { return .retried(request, exception: e, runtime: runtime) }
            return .failed(request, exception: e, traceback: traceback ?? settlement.results.first?.traceback, runtime: runtime)
        case .retry(_, let reason):
            let e = TaskException(type: "Retry", module: "celery.exceptions", message: reason)
            if !settlement.publish.isEmpty { return .retried(request, exception: e, runtime: runtime) }
            return .failed(request, exception: TaskException(type: "MaxRetriesExceededError", module: "celery.exceptions",
                                                             message: "retries exceeded (last reason: \(reason))"),
                           traceback: nil, runtime: runtime)
        case .rejected:
            return .rejected(request, requeue: false)
        case .workerLost(let how):
            if settlement.disposition == .requeue { return .rejected(request, requeue: true) }
            return .failed(request, exception: .workerLost(how), traceback: settlement.results.first?.traceback, runtime: runtime)
        case .timeLimitExceeded(let seconds):
            return .failed(request, exception: TaskException(type: "TimeLimitExceeded", module: "billiard.exceptions", message: "\(seconds)"),
                           traceback: settlement.results.first?.traceback, runtime: runtime)
        }
    }
}

/// Receives every task event of a dispatcher: metrics, Celery events. FnHostCore knows only
/// this protocol; the implementations live in FnHostObservability.
///
/// Threading: called from the consumer, outcome and worker-reader threads, never with the
/// dispatcher's lock held. An implementation must return quickly and never block on I/O
/// (buffer, and publish from a thread of its own).
public protocol TaskObserver: AnyObject, Sendable {
    func observe(_ event: TaskEvent)
}

/// Forwards each event to several observers, in order.
public final class TaskObservers: TaskObserver, @unchecked Sendable {
    private let observers: [any TaskObserver]
    public init(_ observers: [any TaskObserver]) { self.observers = observers }
    public func observe(_ event: TaskEvent) {
        for o in observers { o.observe(event) }
    }
}
