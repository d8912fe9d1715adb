import CeleryProtocol

/// A result backend in memory that counts chords with the semantics of the Redis one (Celery
/// 5.7's `.s` size, joined results by `group_index`, duplicates counted once, one dispatch
/// claim per chord, a "done" marker), storing results in an `InMemoryBroker`. For tests.
public final class InMemoryChordBackend: ChordBackend, @unchecked Sendable {
    public let results: InMemoryBroker
    private let lock = ConditionLock()
    private var sizes: [String: Int] = [:]
    private var joined: [String: [(index: Double, seen: String, result: ChordPartResult)]] = [:]
    private var claims: [String: String] = [:]
    /// Fails the next `chordFinished` this many times (to test retried settlements).
    public var failFinishing = 0

    public init(results: InMemoryBroker) { self.results = results }

    public func store(_ results: [ResultMeta]) throws { try self.results.store(results) }
    public func succeeded(among taskIds: [String]) throws -> Set<String> { try results.succeeded(among: taskIds) }
    public func close() {}

    public func setChordSizes(_ sizes: [(groupId: String, size: Int)]) throws {
        lock.withLock {
            for (gid, size) in sizes {
                claims[gid] = nil
                self.sizes[gid] = size
            }
        }
    }

    public func chordPartReturned(_ part: ChordPart, claimToken: String) throws -> [ChordPartResult]? {
        lock.withLock {
            let gid = part.groupId
            if claims[gid] == "done" { return nil }
            let member = "\(part.taskId):\(part.groupIndex.map(String.init) ?? "+inf")"
            var parts = joined[gid, default: []]
            if !parts.contains(where: { $0.seen == member }) {
                parts.append((part.groupIndex.map(Double.init) ?? .infinity, member,
                              ChordPartResult(taskId: part.taskId, state: part.state.rawValue, result: part.result)))
                joined[gid] = parts
            }
            guard let size = sizes[gid], parts.count == size else { return nil }
            if let claim = claims[gid], claim != claimToken { return nil }
            claims[gid] = claimToken
            return parts.sorted { $0.index < $1.index }.map(\.result)
        }
    }

    public func extendChordClaim(groupId: String, claimToken: String, seconds: Int) throws -> Bool {
        lock.withLock {
            if claims[groupId] == claimToken { return true }
            if claims[groupId] == nil, sizes[groupId] != nil {
                claims[groupId] = claimToken
                return true
            }
            return false
        }
    }

    public func chordFinished(groupId: String, claimToken: String, failed: Bool) throws {
        try lock.withLock {
            if failFinishing > 0 {
                failFinishing -= 1
                throw InMemoryChordBackendError.failedOnPurpose
            }
            if failed {
                sizes[groupId] = nil
            } else if claims[groupId] == claimToken {
                sizes[groupId] = nil
                joined[groupId] = nil
                claims[groupId] = "done"
            }
        }
    }

    /// Whether the chord was released after its body was applied.
    public func isDone(_ groupId: String) -> Bool { lock.withLock { claims[groupId] == "done" } }
}

enum InMemoryChordBackendError: Error { case failedOnPurpose }
