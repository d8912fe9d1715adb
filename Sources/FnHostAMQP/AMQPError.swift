/// Why an AMQP operation failed.
public struct AMQPError: Error, CustomStringConvertible {
    public let description: String
    /// The AMQP reply code when the broker closed the channel or connection (406, 404, 320...).
    public let replyCode: Int?
    /// True when the connection is unusable and must be reopened; false when only the channel
    /// was closed (it has been reopened).
    public let connectionLost: Bool

    public init(_ description: String, replyCode: Int? = nil, connectionLost: Bool = true) {
        self.description = description
        self.replyCode = replyCode
        self.connectionLost = connectionLost
    }

    /// 406 PRECONDITION_FAILED: a declaration differs from the existing entity's.
    public var isPreconditionFailed: Bool { replyCode == 406 }
    /// 404 NOT_FOUND: a passive declaration of something that does not exist.
    public var isNotFound: Bool { replyCode == 404 }
}
