// libFuzzer target: the kombu Redis envelope decoder. See Fuzz/README.md.
import CeleryProtocol

/// Decodes the input as a message popped from a Redis list, as `RedisBroker` does, then
/// re-encodes what decoded (restore and republish paths). Any input may be refused; none may
/// trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let (envelope, message) = RedisEnvelope.decodeTask(bytes)
    if let envelope {
        _ = envelope.redeliveredBytes()
    }
    if case .success(let m) = message {
        _ = m.contentProblem()
        _ = RedisEnvelope.encode(m, queue: "celery", deliveryTag: "fuzz")
    }
    return 0
}
