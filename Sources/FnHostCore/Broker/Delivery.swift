import CeleryProtocol

/// One message taken from a broker, with what is needed to acknowledge or give it back.
///
/// Until it is acknowledged, a delivery is the broker's to redeliver if fnhost dies: on Redis
/// it sits in `unacked`, on AMQP it is an unacked delivery of the channel.
///
/// Immutable. A class, so that handing one on (consumer, dispatcher, request, settlement,
/// outcome thread) shares it instead of copying its strings and its decoded message member by
/// member each time.
public final class Delivery: Sendable {
    /// The queue it was consumed from.
    public let queue: String
    /// The broker's ack handle (Redis: the publisher's `delivery_tag`).
    public let tag: String
    /// Where to give it back: the broker-level key or queue it came from (a priority bucket on Redis).
    public let source: String
    /// The message as stored, for giving it back unchanged.
    public let payload: [UInt8]
    /// The decoded task message, or why it could not be decoded.
    public let message: Result<TaskMessage, MessageDecodingError>

    public init(queue: String, tag: String, source: String, payload: [UInt8], message: Result<TaskMessage, MessageDecodingError>) {
        self.queue = queue
        self.tag = tag
        self.source = source
        self.payload = payload
        self.message = message
    }
}

/// What the consumer may fetch now: per queue, how many messages at most, and a total.
/// Built by the dispatcher from free capacity, so nothing is fetched that has nowhere to run.
public struct FetchPlan: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var queue: String
        public var limit: Int
        public init(queue: String, limit: Int) {
            self.queue = queue
            self.limit = limit
        }
    }
    /// Queues in the order to try them (rotated between fetches for fairness).
    public var entries: [Entry]
    /// The most messages to take in all.
    public var total: Int

    public init(entries: [Entry], total: Int) {
        self.entries = entries
        self.total = total
    }
}
