import FnHostCore

/// Celery's logical clock (kombu's `LamportClock`): every event and pidbox reply sent takes the
/// next value; every clock received moves it to `max(own, theirs) + 1`.
///
/// Threading: any thread.
public final class LamportClock: @unchecked Sendable {
    private let lock = ConditionLock()
    private var value: Int64 = 0

    public init() {}

    /// Advances for a send and returns the new value.
    public func forward() -> Int64 { lock.withLock { value += 1; return value } }

    /// Merges a clock received from a peer.
    @discardableResult
    public func adjust(_ other: Int64) -> Int64 { lock.withLock { value = max(value, other) + 1; return value } }

    /// The current value.
    public var now: Int64 { lock.withLock { value } }
}
