import CeleryProtocol
import FnHostCore

/// Celery's Redis result backend (celery-protocol.md §4.3): each result is stored as
/// `celery-task-meta-<id>` with `result_expires` and published on the channel of the same name,
/// where `AsyncResult.get()` is subscribed. A stored SUCCESS is never overwritten.
///
/// Threading: one connection behind a lock; called from the outcome handler's thread.
public final class RedisResultBackend: ResultBackend, @unchecked Sendable {
    private let url: RedisURL
    private let connection: RedisConnection
    private let lock = ConditionLock()
    /// `result_expires` in seconds; 0 keeps results forever.
    public let resultExpires: Int

    public init(url: RedisURL, resultExpires: Int = 86_400) {
        self.url = url
        self.connection = RedisConnection(url: url)
        self.resultExpires = resultExpires
    }

    public var description: String { url.description }

    /// The key (and channel) of a task's result.
    public static func key(taskId: String) -> String { "celery-task-meta-" + taskId }

    public func store(_ results: [ResultMeta]) throws {
        guard !results.isEmpty else { return }
        let expires = Array(String(resultExpires).utf8)
        let calls = results.map { meta in
            (keys: [Array(Self.key(taskId: meta.taskId).utf8)], args: [meta.encoded(), expires])
        }
        try lock.withLock {
            for reply in try connection.pipelineScripts(RedisScripts.storeResult, calls: calls) {
                if case .error(let e) = reply { throw RedisError(description: "storing a result failed: \(e)", connectionLost: false) }
            }
        }
    }

    public func succeeded(among taskIds: [String]) throws -> Set<String> {
        guard !taskIds.isEmpty else { return [] }
        let reply = try lock.withLock { try connection.command([Array("MGET".utf8)] + taskIds.map { Array(Self.key(taskId: $0).utf8) }) }
        guard case .array(let values) = reply else { return [] }
        var done = Set<String>()
        for (id, value) in zip(taskIds, values) {
            if let bytes = value.bytes, case .object(let meta)? = try? JSONParser.parse(bytes), meta["status"] == .string("SUCCESS") {
                done.insert(id)
            }
        }
        return done
    }

    /// Runs `body` with the backend's connection, under its lock.
    func withConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        try lock.withLock { try body(connection) }
    }

    public func close() {
        lock.withLock { connection.disconnect() }
    }
}
