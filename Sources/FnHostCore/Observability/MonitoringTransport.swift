import CeleryProtocol

/// One message of Celery's monitoring traffic: an event, a remote-control request or reply.
/// JSON (`event_serializer`, the pidbox's serializer), delivery mode 1 (transient); or, for a
/// remote-control request or reply of an app with message signing (its pidbox serializer is
/// `task_serializer`, `auth`), a signed `application/data` body held in `signedBody`.
public struct MonitoringMessage: Sendable {
    /// The routing key (`task.succeeded`, `worker.heartbeat`, a reply's ticket owner...).
    public var routingKey: String
    /// Message headers (`{"hostname": ...}` on events, `{"ticket", "clock"}` on replies).
    public var headers: JSONObject
    /// The JSON body (`.null` when the body is signed).
    public var body: JSON
    /// A signed body (Celery's `auth` serializer, `application/data`), sent and received as is.
    public var signedBody: [UInt8]?

    public init(routingKey: String, headers: JSONObject, body: JSON) {
        self.routingKey = routingKey
        self.headers = headers
        self.body = body
    }

    /// A message whose body is signed (`application/data`).
    public init(routingKey: String, headers: JSONObject, signedBody: [UInt8]) {
        self.init(routingKey: routingKey, headers: headers, body: .null)
        self.signedBody = signedBody
    }

    /// The content type on the wire.
    public var contentType: String { signedBody == nil ? "application/json" : SecurePayload.contentType }
    /// The body bytes on the wire.
    public var wireBody: [UInt8] { signedBody ?? JSONWriter.bytes(body) }
}

/// The broker side of Celery events and remote control (celery-protocol.md §7, §8): publish to
/// a fanout exchange (`celeryev`, `celery.pidbox`), receive what a fanout exchange broadcasts to
/// this host's mailbox queue, and reply through a direct exchange (`reply.celery.pidbox`).
/// Redis implements it with PUBLISH/PSUBSCRIBE and kombu's binding tables; AMQP with real
/// exchanges and queues.
///
/// Threading: `publish` and `reply` may be called from any thread (the implementation
/// serializes them); `receive` from one thread only (the remote-control consumer).
/// Delivery is at-most-once, as in Celery: monitoring traffic is transient.
public protocol MonitoringTransport: AnyObject, Sendable {
    /// Publishes `messages` to the fanout exchange `exchange`, each with its own routing key.
    func publish(_ messages: [MonitoringMessage], toFanout exchange: String) throws

    /// Sends `message` through the direct exchange `exchange` to the queues bound with
    /// `message.routingKey` (a pidbox reply to its client's reply queue). No bound queue: dropped.
    func reply(_ message: MonitoringMessage, throughDirect exchange: String) throws

    /// Declares `queue` bound to the fanout exchange `exchange` (the host's mailbox, e.g.
    /// `fnhost@host.celery.pidbox` on `celery.pidbox`) and waits up to `timeout` seconds for
    /// what it receives; `[]` when nothing came. The first call subscribes; a broken
    /// connection throws, and the next call subscribes again.
    func receive(fromFanout exchange: String, queue: String, timeout: Double) throws -> [MonitoringMessage]

    /// Closes connections; a blocked `receive` returns within its timeout.
    func close()
}

/// What a broker can tell about itself for `/metrics`, `/readyz` and `stats`.
///
/// Threading: called from the metrics server's thread; an implementation uses a connection of
/// its own.
public protocol BrokerInspection: AnyObject, Sendable {
    /// Messages waiting in each queue (every priority bucket counted).
    func queueLengths(_ queues: [String]) throws -> [String: Int]
    /// Messages in the dead-letter queue.
    func deadLetterDepth() throws -> Int
    /// Messages in the durable delayed store.
    func delayedDepth() throws -> Int
    /// Times a broker connection was re-established after it broke, since start.
    var reconnects: Int { get }
    /// Celery's `stats()['broker']` object (no password).
    var connectionInfo: JSONObject { get }
}
