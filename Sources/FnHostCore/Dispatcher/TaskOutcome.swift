import CeleryProtocol

/// How one execution of a task ended, as a worker process (or the host, for a process that
/// died) reports it. The outcome handler turns it into a result, a retry, an ack or a requeue.
public enum TaskOutcome: Sendable, Equatable {
    /// The task returned; `resultJSON` is valid JSON (`null` when the plugin set nothing).
    case success(resultJSON: [UInt8])
    /// The task failed with this exception (`FNHOST_ERROR`, a `TypeError` from argument
    /// conversion, or any failure the worker detected).
    case failure(TaskException, traceback: String?)
    /// The task asked for another attempt after `countdown` seconds (`nil`: the task's policy).
    case retry(countdown: Double?, reason: String)
    /// The message could not be run at all (undecodable body, disallowed content).
    case rejected(MessageDecodingError)
    /// The worker process running it died (`how` is billiard's wording: `signal 11 (SIGSEGV)`).
    case workerLost(how: String)
    /// The hard time limit passed and the worker process was killed.
    case timeLimitExceeded(seconds: Double)
}
