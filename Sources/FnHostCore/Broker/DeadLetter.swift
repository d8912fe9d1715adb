import CeleryProtocol

/// One message in the dead-letter queue: the message exactly as it was received, where it came
/// from, why it could not run, and when it was dead-lettered.
///
/// Stored as one JSON document per message, so `fnhost dlq list` can show it and `replay` can
/// put the original back: `{"id", "dead_at", "reason", "queue", "source", "task", "task_id",
/// "envelope"}` (`envelope_base64` instead when the message was not UTF-8).
public struct DeadLetter: Sendable, Equatable {
    /// The entry's own id (a UUID), to name it in `replay` and `purge`.
    public var id: String
    /// Epoch seconds when it was dead-lettered.
    public var deadAt: Double
    public var reason: String
    /// The queue it was consumed from, and the broker key it came from (priority bucket).
    public var queue: String
    public var source: String
    public var task: String?
    public var taskId: String?
    /// The message exactly as received.
    public var payload: [UInt8]

    public init(id: String, deadAt: Double, reason: String, queue: String, source: String, task: String?, taskId: String?, payload: [UInt8]) {
        self.id = id
        self.deadAt = deadAt
        self.reason = reason
        self.queue = queue
        self.source = source
        self.task = task
        self.taskId = taskId
        self.payload = payload
    }

    /// The entry for `delivery`, dead-lettered now for `reason`.
    public init(delivery: Delivery, reason: String, id: String, now: Double = CeleryTime.now()) {
        var task: String?
        var taskId: String?
        switch delivery.message {
        case .success(let m): (task, taskId) = (m.task, m.id)
        case .failure(let e): (task, taskId) = (e.taskName, e.taskId)
        }
        self.init(id: id, deadAt: now, reason: reason, queue: delivery.queue, source: delivery.source, task: task, taskId: taskId,
                  payload: delivery.payload)
    }

    /// The stored document.
    public func encoded() -> [UInt8] {
        var o: JSONObject = [
            "id": .string(id), "dead_at": .string(CeleryTime.isoformat(deadAt)), "reason": .string(reason),
            "queue": .string(queue), "source": .string(source),
            "task": task.map { .string($0) } ?? .null, "task_id": taskId.map { .string($0) } ?? .null,
        ]
        if let text = String(validating: payload, as: UTF8.self) {
            o["envelope"] = .string(text)
        } else {
            o["envelope_base64"] = .string(String(decoding: Base64.encode(payload), as: UTF8.self))
        }
        return JSONWriter.bytes(.object(o))
    }

    /// Reads a stored document; `nil` when it is not one.
    public init?(decoding bytes: [UInt8]) {
        guard case .object(let o)? = try? JSONParser.parse(bytes), let id = o["id"]?.stringValue, let reason = o["reason"]?.stringValue,
            let queue = o["queue"]?.stringValue
        else { return nil }
        let payload: [UInt8]
        if let text = o["envelope"]?.stringValue {
            payload = Array(text.utf8)
        } else if let b64 = o["envelope_base64"]?.stringValue, let bytes = Base64.decode(b64.utf8) {
            payload = bytes
        } else {
            return nil
        }
        self.init(id: id, deadAt: o["dead_at"]?.stringValue.flatMap(CeleryTime.parse) ?? 0, reason: reason, queue: queue,
                  source: o["source"]?.stringValue ?? queue, task: o["task"]?.stringValue, taskId: o["task_id"]?.stringValue,
                  payload: payload)
    }

    /// The message to publish again on replay: the original, with `retries` back to 0 and no
    /// `eta`, so a task that exhausted its retries gets a full new set. A message that does not
    /// parse is replayed unchanged (and will be dead-lettered again).
    public func replayPayload() -> [UInt8] {
        guard case .object(var document)? = try? JSONParser.parse(payload), case .object(var headers)? = document["headers"] else {
            return payload
        }
        if headers["retries"] != nil { headers["retries"] = .int(0) }
        if headers["eta"] != nil { headers["eta"] = .null }
        document["headers"] = .object(headers)
        return JSONWriter.bytes(.object(document))
    }
}

/// A broker's dead-letter queue as `fnhost dlq` sees it: list, replay, purge.
///
/// `raw` identifies an entry to the store that listed it (Redis: the stored bytes; RabbitMQ:
/// the entry's id); pass it back unchanged.
public protocol DeadLetterStore {
    /// Every entry, oldest first (`entry` nil when it cannot be read).
    func deadLetters() throws -> [(entry: DeadLetter?, raw: [UInt8])]
    /// Puts the entries back on their queues (retries reset, no ETA), each removed from the
    /// dead-letter queue only once it is back; returns the ids replayed.
    func replay(_ entries: [(entry: DeadLetter, raw: [UInt8])]) throws -> [String]
    /// Removes entries; returns how many.
    func purge(_ raws: [[UInt8]]) throws -> Int
}
