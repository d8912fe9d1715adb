import Foundation
import Testing

/// Golden captures of Celery 5.7 copied from /work/shared/fixtures/celery-5.7/.
enum Fixture {
    static func bytes(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
                               "fixture \(name) is missing from the test bundle")
        return Array(try Data(contentsOf: url))
    }

    static let taskEnvelope = "redis_task_message.raw.json"
    static let ignoreResultEnvelope = "redis_task_message_ignore_result.raw.json"
    /// The unacked-hash form `[envelope, exchange, routing_key]` of a retried task.
    static let retryMessage = "redis_retry_message.raw.json"
    static let resultSuccess = "redis_result_success.raw.json"
    static let resultFailure = "redis_result_failure.raw.json"
    /// `math.add(2, 3)` sent with `task_serializer='auth'` (scripts/capture-signed-fixtures.py).
    static let signedTaskEnvelope = "signed_task_message.raw.json"
    /// The SUCCESS document a producer's backend stores with `result_serializer='auth'`.
    static let signedResultSuccess = "signed_result_success.raw"
}
