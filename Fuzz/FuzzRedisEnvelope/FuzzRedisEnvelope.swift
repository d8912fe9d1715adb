// libFuzzer target: the kombu Redis envelope decoder. See Fuzz/README.md.
import CeleryProtocol

/// Decodes the input as a message popped from a Redis list, as `RedisBroker` does (and checks
/// that its in-place reader, `decodeDelivery`, agrees with `decodeTask`), then re-encodes what
/// decoded (restore and republish paths). Any input may be refused; none may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let (envelope, message) = RedisEnvelope.decodeTask(bytes)
    // The broker's in-place reader must agree with this reference reader on every input.
    let fast = RedisEnvelope.decodeDelivery(bytes)
    precondition(fast.deliveryTag == envelope?.deliveryTag && fast.exchange == (envelope?.exchange ?? "")
                 && fast.routingKey == (envelope?.routingKey ?? ""), "decodeDelivery read another tag or restore address")
    switch (fast.message, message) {
    case (.success(let a), .success(let b)):
        precondition(a.id == b.id && a.task == b.task && a.body == b.body && a.headers == b.headers && a.contentType == b.contentType
                     && a.contentEncoding == b.contentEncoding && a.correlationId == b.correlationId && a.replyTo == b.replyTo
                     && a.priority == b.priority, "decodeDelivery read another task")
    case (.failure(let a), .failure(let b)):
        precondition(a == b, "decodeDelivery refused it otherwise")
    default:
        preconditionFailure("decodeDelivery and decodeTask disagree on whether it is a task")
    }
    if let envelope {
        _ = envelope.redeliveredBytes()
    }
    if case .success(let m) = message {
        _ = m.contentProblem()
        _ = RedisEnvelope.encode(m, queue: "celery", deliveryTag: "fuzz")
    }
    return 0
}
