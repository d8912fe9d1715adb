/// Celery's task states, spelled as on the wire.
public enum TaskState: String, Sendable, CaseIterable {
    case pending = "PENDING"
    case received = "RECEIVED"
    case started = "STARTED"
    case success = "SUCCESS"
    case failure = "FAILURE"
    case revoked = "REVOKED"
    case rejected = "REJECTED"
    case retry = "RETRY"
    case ignored = "IGNORED"

    /// SUCCESS, FAILURE, REVOKED: `get()` stops waiting and `date_done` is set.
    public var isReady: Bool { self == .success || self == .failure || self == .revoked }
}
