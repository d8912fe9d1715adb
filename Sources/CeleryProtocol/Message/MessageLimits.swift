/// The bounds fnhost reads a message within; anything beyond them is refused with a reason
/// instead of being read (README, "Limits on what a message may be").
///
/// Guarantees: a message larger than `maxMessageSize` is refused from its length alone, before
/// any of it is parsed, decoded or copied into a structure; JSON deeper than
/// `JSONParser.defaultMaxDepth` (256) is refused by the parser without recursing further; a
/// compressed body is never inflated (see `TaskMessage.contentProblem()`), so no compression
/// bomb can cost memory.
public struct MessageLimits: Sendable, Equatable {
    /// The default `worker_max_message_size`: 64 MiB.
    public static let defaultMaxMessageSize = 64 << 20

    /// The largest message read, in bytes: the whole kombu envelope on Redis, the body on
    /// RabbitMQ (whose headers are bounded by the frame size). `worker_max_message_size`.
    public var maxMessageSize: Int

    /// Limits with the defaults, or `maxMessageSize` bytes.
    public init(maxMessageSize: Int = MessageLimits.defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
    }

    /// Why a message of `size` bytes is refused unread, or `nil` when it may be read. `taskId`
    /// and `taskName` are set when the transport knows them without reading the message
    /// (RabbitMQ's headers), so the producer gets a FAILURE.
    public func sizeProblem(_ size: Int, taskId: String? = nil, taskName: String? = nil) -> MessageDecodingError? {
        guard size > maxMessageSize else { return nil }
        return MessageDecodingError(
            .tooLarge, "the message is \(size) bytes, more than worker_max_message_size (\(maxMessageSize) bytes); it was not read",
            taskId: taskId, taskName: taskName)
    }
}
