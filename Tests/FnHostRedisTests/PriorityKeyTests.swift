@testable import FnHostRedis
import Testing

/// kombu's priority buckets: `queue`, `queue\x06\x163`, ... and back.
@Suite struct PriorityKeyTests {
    @Test(arguments: [
        ("math.add", "math.add"),
        ("math.add\u{06}\u{16}3", "math.add"),
        ("q\u{06}\u{16}a\u{06}\u{16}9", "q\u{06}\u{16}a"),  // cut at the last separator, as kombu does
        ("café.ü\u{06}\u{16}6", "café.ü"),
        ("x", "x"),
    ])
    func queueOfKey(key: String, queue: String) {
        #expect(RedisBroker.queue(ofKey: key) == queue)
    }

    @Test func keysRoundTrip() {
        for queue in ["celery", "math.add", "日本語"] {
            for bucket in RedisBroker.priorityBuckets {
                #expect(RedisBroker.queue(ofKey: RedisBroker.key(queue: queue, bucket: bucket)) == queue)
            }
        }
    }
}
