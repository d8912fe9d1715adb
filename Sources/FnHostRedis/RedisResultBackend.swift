import CeleryProtocol
import FnHostCore

/// Celery's Redis result backend (celery-protocol.md §4.3): each result is stored as
/// `celery-task-meta-<id>` with `result_expires` and published on the channel of the same name,
/// where `AsyncResult.get()` is subscribed. A stored SUCCESS is never overwritten.
///
/// With `signing` (`result_serializer: auth`), each document is stored as Celery's `auth`
/// serializer stores it: signed with the host's key, so a producer that accepts only `auth`
/// content verifies it; the SUCCESS guard reads signed documents too.
///
/// Threading: one connection behind a lock; called by the thread carrying out settlements.
public final class RedisResultBackend: ResultBackend, @unchecked Sendable {
    private let url: RedisURL
    private let connection: RedisConnection
    private let lock = ConditionLock()
    /// `result_expires` in seconds; 0 keeps results forever.
    public let resultExpires: Int
    /// `result_serializer: auth`: documents are signed (and read back verified).
    public let signing: (any MessageSigning)?

    public init(url: RedisURL, resultExpires: Int = 86_400, signing: (any MessageSigning)? = nil) {
        self.url = url
        self.signing = signing
        self.connection = RedisConnection(url: url)
        self.resultExpires = resultExpires
    }

    public var description: String { url.description }

    /// The key (and channel) of a task's result.
    public static func key(taskId: String) -> String { "celery-task-meta-" + taskId }

    public func store(_ results: [ResultMeta]) throws {
        guard !results.isEmpty else { return }
        let expires = Array(String(resultExpires).utf8)
        let calls = try results.map { meta in
            (keys: [Array(Self.key(taskId: meta.taskId).utf8)], args: [try document(meta), expires])
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
            if let bytes = value.bytes, case .object(let meta)? = try? JSONParser.parse(opened(bytes)), meta["status"] == .string("SUCCESS") {
                done.insert(id)
            }
        }
        return done
    }

    /// The stored form of `meta`: JSON, or signed JSON with `result_serializer: auth`.
    func document(_ meta: ResultMeta) throws -> [UInt8] {
        try document(meta.encoded())
    }

    /// `json` as stored: as it is, or signed with `result_serializer: auth`.
    func document(_ json: [UInt8]) throws -> [UInt8] {
        guard let signing else { return json }
        return try signing.sign(json, contentType: "application/json", contentEncoding: "utf-8")
    }

    /// A stored value as JSON: JSON as it is (base64 never starts with `{` or `[`), a signed
    /// one verified and opened (one that fails verification reads as nothing).
    func opened(_ stored: [UInt8]) -> [UInt8] {
        guard let signing, let first = stored.first, first != UInt8(ascii: "{"), first != UInt8(ascii: "[") else { return stored }
        return (try? signing.verify(stored).body) ?? []
    }

    /// Runs `body` with the backend's connection, under its lock.
    func withConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        try lock.withLock { try body(connection) }
    }

    public func close() {
        lock.withLock { connection.disconnect() }
    }
}
