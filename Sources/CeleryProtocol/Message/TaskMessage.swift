/// A Celery task message (protocol v2), transport-independent: the headers table, the
/// properties fnhost needs, and the body still serialized.
///
/// Building one validates every header fnhost reads (types included), so the dispatcher can
/// decide from headers alone; the body is only checked to be present and is handed to a worker
/// process untouched.
public struct TaskMessage: Sendable {
    /// The full headers table as received (custom headers included).
    public var headers: JSONObject
    /// `content_type` (`application/json` from a default producer).
    public var contentType: String
    /// `content_encoding` (`utf-8` from a default producer).
    public var contentEncoding: String
    /// The serialized body bytes (already base64-decoded on Redis).
    public var body: [UInt8]
    /// `correlation_id` property (the task id for tasks).
    public var correlationId: String?
    /// `reply_to` property: where rpc:// replies go.
    public var replyTo: String?
    /// `priority` property, 0 when absent.
    public var priority: Int

    /// The task id (`id` header): also the result key.
    public let id: String
    /// The registered task name (`task` header): what fnhost dispatches on.
    public let task: String
    /// `retries`: 0 on the first delivery.
    public let retries: Int
    /// `eta` as epoch seconds, when set.
    public let eta: Double?
    /// `expires` as epoch seconds, when set.
    public let expires: Double?
    /// `timelimit` as (hard, soft) seconds; each may be absent.
    public let timeLimit: (hard: Double?, soft: Double?)
    /// `ignore_result`: `nil` means "use the task's default" (`send_task` sends null).
    public let ignoreResult: Bool?
    /// `root_id`, `parent_id`, `group`, `group_index`, `shadow`.
    public let rootId: String?
    public let parentId: String?
    public let group: String?
    public let groupIndex: Int?
    public let shadow: String?

    /// Validates `headers` and builds the message.
    public init(
        headers: JSONObject, contentType: String, contentEncoding: String, body: [UInt8],
        correlationId: String? = nil, replyTo: String? = nil, priority: Int = 0
    ) throws(MessageDecodingError) {
        self.headers = headers
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.body = body
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.priority = priority

        guard case .string(let id)? = headers["id"], !id.isEmpty else {
            throw MessageDecodingError(.malformedHeaders, "the message has no task id (header 'id' must be a non-empty string)")
        }
        let name = headers["task"]?.stringValue
        guard !id.utf8.contains(0) else {
            throw MessageDecodingError(.malformedHeaders, "header 'id' contains a NUL byte", taskId: id, taskName: name)
        }
        self.id = id
        func bad(_ reason: String) -> MessageDecodingError {
            MessageDecodingError(.malformedHeaders, reason, taskId: id, taskName: name)
        }
        guard let task = name, !task.isEmpty else { throw bad("header 'task' must be a non-empty string") }
        self.task = task

        func optionalString(_ key: String) throws(MessageDecodingError) -> String? {
            switch headers[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let other?: throw bad("header '\(key)' must be a string or null, not \(other.typeName)")
            }
        }
        func optionalTime(_ key: String) throws(MessageDecodingError) -> Double? {
            guard let text = try optionalString(key) else { return nil }
            guard let t = CeleryTime.parse(text) else { throw bad("header '\(key)' is not an ISO-8601 date-time: \(text.prefix(64))") }
            return t
        }

        switch headers["retries"] {
        case nil, .null?: self.retries = 0
        case .int(let r)? where r >= 0 && r <= Int64(Int32.max): self.retries = Int(r)
        case let other?: throw bad("header 'retries' must be a non-negative integer, not \(JSONWriter.string(other).prefix(32))")
        }
        self.eta = try optionalTime("eta")
        self.expires = try optionalTime("expires")

        switch headers["timelimit"] {
        case nil, .null?: self.timeLimit = (nil, nil)
        case .array(let pair)? where pair.count == 2:
            func limit(_ v: JSON) throws(MessageDecodingError) -> Double? {
                if v.isNull { return nil }
                guard let d = v.doubleValue, d.isFinite, d >= 0, d <= Self.maxTimeLimit else {
                    throw bad("header 'timelimit' must be [hard, soft] with numbers from 0 to \(Int(Self.maxTimeLimit)) seconds or null")
                }
                return d > 0 ? d : nil
            }
            self.timeLimit = (try limit(pair[0]), try limit(pair[1]))
        default: throw bad("header 'timelimit' must be [hard, soft]")
        }

        switch headers["ignore_result"] {
        case nil, .null?: self.ignoreResult = nil
        case .bool(let b)?: self.ignoreResult = b
        case let other?: throw bad("header 'ignore_result' must be a boolean or null, not \(other.typeName)")
        }
        // Not read by fnhost, but shown by `inspect` and events: the types Celery sends, or nothing.
        _ = try optionalString("argsrepr")
        _ = try optionalString("kwargsrepr")
        _ = try optionalString("origin")
        self.rootId = try optionalString("root_id")
        self.parentId = try optionalString("parent_id")
        self.group = try optionalString("group")
        self.shadow = try optionalString("shadow")
        switch headers["group_index"] {
        case nil, .null?: self.groupIndex = nil
        case .int(let i)?: self.groupIndex = Int(truncatingIfNeeded: i)
        case let other?: throw bad("header 'group_index' must be an integer or null, not \(other.typeName)")
        }
    }

    /// The longest hard or soft time limit accepted, in seconds (about 31 years): a larger one
    /// is a mistake or an attack, not a limit.
    public static let maxTimeLimit = 1e9

    /// `content_encoding` values a JSON body may have (compared without case); an empty one is
    /// read as UTF-8, as kombu does for AMQP messages without the property.
    public static let acceptedContentEncodings: Set<String> = ["utf-8", "utf8", "ascii", "us-ascii", "binary", ""]

    /// Content types fnhost deserializes. Everything else (pickle, yaml, msgpack) is refused
    /// without being read: it would either run arbitrary code or is unsupported.
    public static let acceptedContentTypes: Set<String> = ["application/json"]

    /// Refuses content fnhost will not deserialize; `nil` when the body may be decoded.
    public func contentProblem() -> MessageDecodingError? {
        // The common case first, without building a string (this runs for every message).
        let type = contentType == "application/json" ? contentType
            : contentType.split(separator: ";").first.map { String($0.trimmingSpaces()) } ?? ""
        if isSigned {
            return MessageDecodingError(
                .contentDisallowed,
                "Refusing a signed message (Celery's auth serializer, application/data): this host has no message signing configured; set security_key, security_certificate and security_cert_store in fnhost.yml to verify signed messages",
                taskId: id, taskName: task)
        }
        guard Self.acceptedContentTypes.contains(type) else {
            return MessageDecodingError(
                .contentDisallowed,
                "Refusing to deserialize untrusted content of type \(contentType.prefix(64)) (only application/json is accepted)",
                taskId: id, taskName: task)
        }
        guard Self.acceptedContentEncodings.contains(contentEncoding.lowercased()) else {
            return MessageDecodingError(
                .undecodableBody, "unsupported content-encoding \(contentEncoding.prefix(40)) for application/json (utf-8 is expected)",
                taskId: id, taskName: task)
        }
        // Never inflated: a compressed body could be a bomb (a few MB that inflate to gigabytes).
        if let compression = headers["compression"], !compression.isNull {
            return MessageDecodingError(
                .undecodableBody, "compressed bodies (\(JSONWriter.string(compression).prefix(40))) are not supported; send without compression",
                taskId: id, taskName: task)
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
