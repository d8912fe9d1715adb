/// Why a message could not be turned into a task request.
///
/// `taskId` is set when the id could be read, so the caller can store a FAILURE the producer
/// sees; `exceptionType` names the Python exception Celery/kombu would raise for it.
public struct MessageDecodingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is; new kinds may be added.
    public enum Kind: Sendable, Equatable {
        /// The envelope itself is unreadable (not JSON, not an object, fields missing).
        case malformedEnvelope
        /// The headers are missing or of the wrong type.
        case malformedHeaders
        /// The body could not be decoded (bad base64, not JSON, not `[args, kwargs, embed]`).
        case undecodableBody
        /// A content type or encoding fnhost will not deserialize (pickle, yaml, msgpack...).
        case contentDisallowed
        /// Larger than `MessageLimits.maxMessageSize`: refused without being read.
        case tooLarge
    }

    public let kind: Kind
    public let reason: String
    public var taskId: String?
    public var taskName: String?

    public init(_ kind: Kind, _ reason: String, taskId: String? = nil, taskName: String? = nil) {
        self.kind = kind
        self.reason = reason
        self.taskId = taskId
        self.taskName = taskName
    }

    /// The exception a producer's `AsyncResult.get()` raises for this problem.
    public var exception: TaskException {
        switch kind {
        case .contentDisallowed: return TaskException(type: "ContentDisallowed", module: "kombu.exceptions", message: reason)
        default: return TaskException(type: "DecodeError", module: "kombu.exceptions", message: reason)
        }
    }

    public var description: String { reason }
}
