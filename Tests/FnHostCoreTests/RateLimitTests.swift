import CeleryProtocol
import FnHostCore
import Testing

@Suite struct RateLimitTests {
    @Test(arguments: [("10/s", 10.0), ("120/m", 2.0), ("3600/h", 1.0), ("5", 5.0), ("0.5/s", 0.5)])
    func parsesCeleryNotation(text: String, perSecond: Double) {
        #expect(RateLimit(parsing: text)?.perSecond == perSecond)
    }

    @Test(arguments: ["", "10/d", "x/s", "0/s", "-1/s", "10/s/s"])
    func refusesAnythingElse(text: String) {
        #expect(RateLimit(parsing: text) == nil)
    }

    @Test func tokenBucketSpacesStartsEvenlyWithoutBursts() throws {
        var bucket = TokenBucket(limit: try #require(RateLimit(parsing: "4/s")), now: 100)
        #expect(bucket.take(now: 100) == 0)
        #expect(bucket.take(now: 100) == 0.25)
        #expect(abs(bucket.take(now: 100.1) - 0.15) < 1e-9)
        #expect(bucket.take(now: 100.25) == 0)
        // A long idle period does not bank tokens (capacity 1, as Celery's TokenBucket).
        #expect(bucket.take(now: 200) == 0)
        #expect(bucket.take(now: 200) > 0)
    }

    @Test func dispatcherStartsARateLimitedFunctionNoFasterThanItsRate() throws {
        let host = try TestHost(functions: ["work": #"{"rate_limit": "10/s"}"#], concurrency: 4, handlers: ["work": succeed])
        for i in 0..<4 { host.send(try taskMessage(id: "r\(i)", task: "work")) }
        host.start()
        defer { host.stop() }
        for i in 0..<4 { #expect(host.broker.waitForResult("r\(i)", timeout: 10)?.status == .success) }
        let starts = host.executor.started.map(\.at).sorted()
        try #require(starts.count == 4)
        // A lower bound only: a slow machine spaces them more, never less.
        for (a, b) in zip(starts, starts.dropFirst()) { #expect(b - a >= 0.1 - 0.002) }
    }
}
