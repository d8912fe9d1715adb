import CeleryProtocol
import FnHostCore

/// Celery's `rpc://` result backend (celery-protocol.md §4.4): each state change is a message
/// to the task's `reply_to` queue through the default exchange, `correlation_id` = task id,
/// delivery mode 1 (`result_persistent` off), content type JSON, no headers. A task without
/// `reply_to` gets no message, as in Celery; a reply queue that is gone drops it silently.
///
/// Publishes through the broker's publishing connection with confirms, so a result counts as
/// stored only once RabbitMQ has it.
public final class RPCResultBackend: ResultBackend, @unchecked Sendable {
    private let publisher: AMQPPublisher
    /// `result_persistent`: delivery mode 2 instead of 1.
    public let persistent: Bool

    public init(publisher: AMQPPublisher, persistent: Bool = false) {
        self.publisher = publisher
        self.persistent = persistent
    }

    /// The reply message for `meta`, or nil when the task has no `reply_to`.
    public func reply(for meta: ResultMeta) -> AMQPPublisher.Message? {
        guard let replyTo = meta.replyTo, !replyTo.isEmpty else { return nil }
        let properties = AMQPProperties(contentType: "application/json", contentEncoding: "utf-8", headers: [:],
                                        deliveryMode: persistent ? 2 : 1, priority: 0, correlationId: meta.taskId)
        return AMQPPublisher.Message(routingKey: replyTo, properties: properties, body: meta.encoded())
    }

    public func store(_ results: [ResultMeta]) throws {
        try publisher.publish(results.compactMap(reply(for:)))
    }

    /// The rpc:// backend keeps nothing to look up: redelivered tasks are never skipped.
    public func succeeded(among taskIds: [String]) throws -> Set<String> { [] }

    public func close() {}
}
