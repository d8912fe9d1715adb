import CeleryProtocol

/// What must happen on the broker and the backend once something is decided about a delivery:
/// messages to publish first, then results to store, then the delivery acknowledged or given back.
///
/// The order is the at-least-once promise: a delivery is acknowledged only after its result
/// (and any follow-up message) is safely written; if fnhost dies before, the broker redelivers.
public struct Settlement: Sendable {
    /// What becomes of the delivery.
    public enum Disposition: Sendable, Equatable {
        /// Acknowledge: done with it for good.
        case ack
        /// Give it back to its queue (warm shutdown, reject with requeue).
        case requeue
        /// Nothing: it was already acknowledged (early ack) or there is nothing to acknowledge.
        case none
        /// Move it to the broker's durable delayed store until `until` (epoch seconds), and
        /// acknowledge it in the same atomic step: a long ETA is never held unacknowledged.
        case delay(until: Double)
        /// Move it, intact, to the dead-letter queue with `reason`, acknowledging it in the same
        /// atomic step (a message that cannot run: undecodable, unknown task, retries exhausted).
        case deadLetter(reason: String)
    }

    /// How the task itself ended, when this settles a finished run (the canvas continues from it).
    public enum Finished: Sendable {
        case succeeded(resultJSON: [UInt8])
        case failed(TaskException, traceback: String?)
    }

    public var delivery: Delivery?
    public var publish: [(queue: String, message: TaskMessage)]
    public var results: [ResultMeta]
    public var disposition: Disposition
    /// Set by `of(_:outcome:)` when the task succeeded or failed for good (not retried, not requeued).
    public var finished: Finished?
    /// Chord sizes (`.s`) to set before anything is published (chords applied by this host).
    public var chordSizes: [(groupId: String, size: Int)] = []
    /// Chord header parts to count once results are stored; the claim winner applies the body.
    public var chordParts: [ChordPart] = []
    /// Messages published once results are stored (errbacks, which may read the failure).
    public var publishAfterStore: [(queue: String, message: TaskMessage)] = []

    public init(delivery: Delivery?, publish: [(queue: String, message: TaskMessage)] = [], results: [ResultMeta] = [], disposition: Disposition) {
        self.delivery = delivery
        self.publish = publish
        self.results = results
        self.disposition = disposition
    }

    /// The `traceback` text stored with a failure: where it happened, then Python's last line,
    /// `ExcType: message` (a native plugin has no Python stack to show).
    public static func traceback(_ exception: TaskException, context: String) -> String {
        "fnhost: \(context)\n\(exception.type): \(exception.message)\n"
    }

    /// The settlement of a finished request (Celery's acks_late rules, celery-protocol.md §1.6, §5).
    ///
    /// - success: SUCCESS stored (unless results are ignored), then acked.
    /// - failure / rejected / time limit: FAILURE stored (unless ignored), then acked.
    /// - worker lost: with `acks_late` and `reject_on_worker_lost`, requeued; else FAILURE
    ///   `WorkerLostError`, acked.
    /// - retry: a copy with `retries + 1` and an `eta` is published to the same queue, RETRY
    ///   stored, then acked; past `max_retries`, FAILURE `MaxRetriesExceededError`, and the
    ///   message goes to the dead-letter queue (so do rejected messages and exhausted autoretries).
    /// When the request was acknowledged early (`acks_late: false`) the disposition is `.none`.
    public static func of(_ request: TaskRequest, outcome: TaskOutcome, now: Double = CeleryTime.now(),
                          randomUpTo: (Int) -> Int = RetryPolicy.systemRandom) -> Settlement {
        let done: Disposition = request.function.options.acksLate ? .ack : .none
        let message = request.message
        func result(_ meta: ResultMeta) -> [ResultMeta] {
            guard request.storesResult else { return [] }
            var meta = meta
            meta.replyTo = message.replyTo
            return [meta]
        }
        func failed(_ exception: TaskException, traceback: String? = nil, deadLetter: Bool = false) -> Settlement {
            let text = traceback ?? Settlement.traceback(exception, context: "task \(message.task)[\(message.id)] in plugin \(request.function.plugin)")
            var settlement = Settlement(delivery: request.delivery,
                       results: result(.exception(exception, taskId: message.id, traceback: text,
                                                  groupId: message.group, parentId: message.parentId)),
                       disposition: deadLetter ? .deadLetter(reason: "\(exception.type): \(exception.message)") : done)
            settlement.finished = .failed(exception, traceback: text)
            return settlement
        }
        /// A copy with `retries + 1` and an `eta` published to the same queue, RETRY stored, then acked.
        func retried(countdown delay: Double, reason: String, exception: TaskException?) -> Settlement {
            var headers = message.headers
            headers["retries"] = .int(Int64(message.retries + 1))
            headers["eta"] = .string(CeleryTime.isoformat(now + delay))
            if headers["parent_id"]?.isNull ?? true { headers["parent_id"] = .string(message.id) }
            do {
                let next = try TaskMessage(headers: headers, contentType: message.contentType, contentEncoding: message.contentEncoding,
                                           body: message.body, correlationId: message.correlationId, replyTo: message.replyTo,
                                           priority: message.priority)
                let retryMeta = ResultMeta.exception(
                    exception ?? TaskException(type: "Retry", module: "celery.exceptions", message: "Retry in \(delay)s: \(reason)"),
                    state: .retry, taskId: message.id, groupId: message.group, parentId: message.parentId)
                return Settlement(delivery: request.delivery, publish: [(request.delivery.queue, next)],
                                  results: result(retryMeta), disposition: done)
            } catch {
                return failed(TaskException(type: "RuntimeError", module: "builtins", message: "cannot build the retry message: \(error)"))
            }
        }
        switch outcome {
        case .success(let json):
            var settlement = Settlement(delivery: request.delivery,
                              results: result(.success(taskId: message.id, resultJSON: json, groupId: message.group, parentId: message.parentId)),
                              disposition: done)
            settlement.finished = .succeeded(resultJSON: json)
            return settlement
        case .failure(let exception, let traceback):
            let policy = RetryPolicy(request.function.options)
            if policy.autoretry && policy.allowsRetry(after: message.retries) {
                return retried(countdown: policy.countdown(requested: nil, retries: message.retries, randomUpTo: randomUpTo),
                               reason: "\(exception.type): \(exception.message)", exception: exception)
            }
            // Past max_retries an autoretried task fails with its own exception, as Celery's
            // retry(exc=exc) raises exc, and its message goes to the dead-letter queue.
            return failed(exception, traceback: traceback, deadLetter: policy.autoretry)
        case .rejected(let problem):
            return failed(problem.exception, deadLetter: true)
        case .timeLimitExceeded(let seconds):
            return failed(TaskException(type: "TimeLimitExceeded", module: "billiard.exceptions", message: "\(seconds)"))
        case .workerLost(let how):
            if request.function.options.acksLate && request.function.options.rejectOnWorkerLost {
                return Settlement(delivery: request.delivery, disposition: .requeue)
            }
            return failed(.workerLost(how))
        case .retry(let countdown, let reason):
            let policy = RetryPolicy(request.function.options)
            guard policy.allowsRetry(after: message.retries) else {
                return failed(TaskException(
                    type: "MaxRetriesExceededError", module: "celery.exceptions",
                    message: "Can't retry \(message.task)[\(message.id)]: \(policy.maxRetries ?? 0) retries exceeded (last reason: \(reason))"),
                    deadLetter: true)
            }
            return retried(countdown: policy.countdown(requested: countdown, retries: message.retries, randomUpTo: randomUpTo),
                           reason: reason, exception: nil)
        }
    }
}
