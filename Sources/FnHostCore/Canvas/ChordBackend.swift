import CeleryProtocol

/// A chord header member that finished: what its backend records to count the chord.
public struct ChordPart: Sendable {
    /// The chord's group id (the header member's `group` header).
    public var groupId: String
    public var taskId: String
    /// Its position in the header (`group_index`); results are joined in this order.
    public var groupIndex: Int?
    /// SUCCESS, FAILURE or REVOKED.
    public var state: TaskState
    /// The return value, or the exception dict of a failure, as JSON.
    public var result: JSON
    /// The chord body to apply once every part has returned.
    public var body: Signature
    /// The workflow's root id, for the body's `root_id`.
    public var rootId: String

    public init(groupId: String, taskId: String, groupIndex: Int?, state: TaskState, result: JSON, body: Signature, rootId: String) {
        self.groupId = groupId
        self.taskId = taskId
        self.groupIndex = groupIndex
        self.state = state
        self.result = result
        self.body = body
        self.rootId = rootId
    }
}

/// One joined header result, as the backend recorded it.
public struct ChordPartResult: Sendable, Equatable {
    public var taskId: String
    /// The state as stored (`SUCCESS`, `FAILURE`, `REVOKED`...).
    public var state: String
    public var result: JSON

    public init(taskId: String, state: String, result: JSON) {
        self.taskId = taskId
        self.state = state
        self.result = result
    }
}

/// A result backend that can count chord parts atomically, so that a chord body is applied
/// exactly once however many hosts finish header tasks at the same instant (Redis, with
/// Celery 5.7's keys and claim step: celery-protocol.md §4.3). rpc:// is not one.
///
/// Threading: called by whichever thread carries out settlements (see `Broker`), never two at once.
public protocol ChordBackend: ResultBackend {
    /// Sets each chord's size (`.s`) before its header is published, as whoever applies a chord does.
    func setChordSizes(_ sizes: [(groupId: String, size: Int)]) throws

    /// Records `part` (a duplicate run of the same header task counts once). When this makes
    /// the chord complete and the dispatch claim is won with `claimToken` (or was already won
    /// with it, when a failed settlement is retried), returns every recorded result in header
    /// order; otherwise `nil`: another part, or another host, applies the body.
    func chordPartReturned(_ part: ChordPart, claimToken: String) throws -> [ChordPartResult]?

    /// Just before the body is applied: keeps the dispatch claim for `seconds` more if this host
    /// still owns it (or takes it back if it expired and nobody else took it). `false`: another
    /// host owns the chord now, and this one must not apply the body.
    func extendChordClaim(groupId: String, claimToken: String, seconds: Int) throws -> Bool

    /// After the claim winner applied the body (or failed it): on success, removes the chord's
    /// keys and leaves a "done" marker so late duplicates do nothing; on failure, removes the
    /// size so a late duplicate does not fail the body again.
    func chordFinished(groupId: String, claimToken: String, failed: Bool) throws
}
