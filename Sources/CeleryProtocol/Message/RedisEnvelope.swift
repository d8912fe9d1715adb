/// The JSON envelope kombu's Redis transport stores in a queue list (celery-protocol.md §2.2):
/// `{"body": base64, "content-encoding", "content-type", "headers", "properties": {...,
/// "delivery_tag", "delivery_info": {"exchange", "routing_key"}}}`.
public struct RedisEnvelope: Sendable {
    /// The envelope as parsed.
    public var document: JSONObject
    /// `properties.delivery_tag`: the ack handle, made by the publisher.
    public let deliveryTag: String?
    /// `properties.delivery_info.exchange` and `.routing_key`, used to restore the message.
    public let exchange: String
    public let routingKey: String

    /// Parses an envelope. Fails only when the bytes are not a JSON object.
    public init(bytes: some Collection<UInt8>) throws(MessageDecodingError) {
        try self.init(bytes: Array(bytes))
    }

    /// Parses an envelope held in an array, without copying it (the per-message path).
    public init(bytes: [UInt8]) throws(MessageDecodingError) {
        let parsed: JSON
        do {
            parsed = try JSONParser.parse(bytes)
        } catch {
            throw MessageDecodingError(.malformedEnvelope, "the message is not a JSON envelope (\(error))")
        }
        guard case .object(let document) = parsed else {
            throw MessageDecodingError(.malformedEnvelope, "the message is a JSON \(parsed.typeName), not an envelope object")
        }
        self.init(document: document)
    }

    /// An envelope already parsed (from `unacked`, whose entries hold it as a JSON object).
    public init(document: JSONObject) {
        self.document = document
        let properties = document["properties"]
        self.deliveryTag = properties?["delivery_tag"]?.stringValue
        self.exchange = properties?["delivery_info"]?["exchange"]?.stringValue ?? ""
        self.routingKey = properties?["delivery_info"]?["routing_key"]?.stringValue ?? ""
    }

    /// The task message inside: validates headers, decodes the body from its `body_encoding`.
    public func taskMessage() throws(MessageDecodingError) -> TaskMessage {
        try Self.taskMessage(
            headers: document["headers"], contentType: document["content-type"], contentEncoding: document["content-encoding"],
            properties: document["properties"], body: document["body"]?.stringValue?.utf8)
    }

    /// The task message of an envelope's members (`body`: the text of a string body, `nil` when
    /// there is none). Both decoding paths build it here, so they refuse a message alike.
    static func taskMessage<Body: Collection<UInt8>>(
        headers: JSON?, contentType: JSON?, contentEncoding: JSON?, properties: JSON?, body: Body?
    ) throws(MessageDecodingError) -> TaskMessage {
        guard case .object(let headers)? = headers else {
            throw MessageDecodingError(.malformedHeaders, "the envelope has no headers object (protocol 1 messages are not supported)")
        }
        var message = try TaskMessage(
            headers: headers,
            contentType: contentType?.stringValue ?? "",
            contentEncoding: contentEncoding?.stringValue ?? "",
            body: [],
            correlationId: properties?["correlation_id"]?.stringValue,
            replyTo: properties?["reply_to"]?.stringValue,
            priority: Int(properties?["priority"]?.intValue ?? 0))
        guard let body else {
            throw MessageDecodingError(.undecodableBody, "the envelope has no string body", taskId: message.id, taskName: message.task)
        }
        switch properties?["body_encoding"] {
        case .string("base64")?:
            guard let decoded = Base64.decode(body) else {
                throw MessageDecodingError(.undecodableBody, "the body is not valid base64", taskId: message.id, taskName: message.task)
            }
            message.body = decoded
        case nil, .null?, .string("utf-8")?:
            message.body = Array(body)
        case let other?:
            throw MessageDecodingError(
                .undecodableBody, "unsupported body_encoding \(JSONWriter.string(other).prefix(40))", taskId: message.id, taskName: message.task)
        }
        return message
    }

    /// The envelope with `redelivered` set in headers and delivery_info, as kombu marks a
    /// restored message, serialized.
    public func redeliveredBytes() -> [UInt8] {
        var document = self.document
        if case .object(var headers)? = document["headers"] {
            headers["redelivered"] = .bool(true)
            document["headers"] = .object(headers)
        }
        if case .object(var properties)? = document["properties"] {
            if case .object(var info)? = properties["delivery_info"] {
                info["redelivered"] = .bool(true)
                properties["delivery_info"] = .object(info)
            }
            document["properties"] = .object(properties)
        }
        return JSONWriter.bytes(.object(document))
    }

    /// Builds the envelope kombu would publish for `message` on exchange `""` with routing key
    /// `queue`, with a fresh `deliveryTag`.
    public static func encode(_ message: TaskMessage, queue: String, deliveryTag: String) -> [UInt8] {
        var properties: JSONObject = [:]
        properties["correlation_id"] = .string(message.correlationId ?? message.id)
        properties["reply_to"] = .string(message.replyTo ?? "")
        properties["delivery_mode"] = .int(2)
        properties["delivery_info"] = .object(["exchange": "", "routing_key": .string(queue)])
        properties["priority"] = .int(Int64(message.priority))
        properties["body_encoding"] = "base64"
        properties["delivery_tag"] = .string(deliveryTag)
        let document: JSONObject = [
            "body": .string(String(decoding: Base64.encode(message.body), as: UTF8.self)),
            "content-encoding": .string(message.contentEncoding),
            "content-type": .string(message.contentType),
            "headers": .object(message.headers),
            "properties": .object(properties),
        ]
        return JSONWriter.bytes(.object(document))
    }
}

extension RedisEnvelope {
    /// Decodes a stored envelope and the task inside, never throwing: the envelope when it
    /// parsed, and the task message or why there is none.
    public static func decodeTask(_ bytes: some Collection<UInt8>) -> (envelope: RedisEnvelope?, message: Result<TaskMessage, MessageDecodingError>) {
        decodeTask(Array(bytes))
    }

    /// `decodeTask` for bytes already in an array, without copying them (the per-message path).
    public static func decodeTask(_ bytes: [UInt8]) -> (envelope: RedisEnvelope?, message: Result<TaskMessage, MessageDecodingError>) {
        let envelope: RedisEnvelope
        do { envelope = try RedisEnvelope(bytes: bytes) } catch { return (nil, .failure(error)) }
        do { return (envelope, .success(try envelope.taskMessage())) } catch { return (envelope, .failure(error)) }
    }
}
