import CeleryProtocol
import FnHostCore

/// Celery's `rpc://` result backend (celery-protocol.md §4.4): each state change is a message
/// to the task's `reply_to` queue through the default exchange, `correlation_id` = task id,
/// delivery mode 1 (`result_persistent` off), content type JSON, no headers. A task without
/// `reply_to` gets no message, as in Celery; a reply queue that is gone drops it silently.
///
/// Publishes through the broker's publishing connection with confirms, so a result counts as
/// stored only once RabbitMQ has it.
///
/// With `signing` (`result_serializer: auth`), each reply is Celery's `auth` serializer's:
/// content type `application/data`, the JSON document signed with the host's key.
public final class RPCResultBackend: ResultBackend, @unchecked Sendable {
    private let publisher: AMQPPublisher
    /// `result_persistent`: delivery mode 2 instead of 1.
    public let persistent: Bool
    /// `result_serializer: auth`: replies are signed.
    public let signing: (any MessageSigning)?

    public init(publisher: AMQPPublisher, persistent: Bool = false, signing: (any MessageSigning)? = nil) {
        self.publisher = publisher
        self.signing = signing
        self.persistent = persistent
    }

    /// The reply message for `meta`, or nil when the task has no `reply_to`.
    public func reply(for meta: ResultMeta) throws -> AMQPPublisher.Message? {
        guard let replyTo = meta.replyTo, !replyTo.isEmpty else { return nil }
        var body = meta.encoded()
        var contentType = "application/json"
        if let signing {
            body = try signing.sign(body, contentType: contentType, contentEncoding: "utf-8")
            contentType = SecurePayload.contentType
        }
        let properties = AMQPProperties(contentType: contentType, contentEncoding: "utf-8", headers: [:],
                                        deliveryMode: persistent ? 2 : 1, priority: 0, correlationId: meta.taskId)
        return AMQPPublisher.Message(routingKey: replyTo, properties: properties, body: body)
    }

    public func store(_ results: [ResultMeta]) throws {
        try publisher.publish(results.compactMap { try reply(for: $0) })
    }

    /// The rpc:// backend keeps nothing to look up: redelivered tasks are never skipped.
    public func succeeded(among taskIds: [String]) throws -> Set<String> { [] }

    public func close() {}
}
