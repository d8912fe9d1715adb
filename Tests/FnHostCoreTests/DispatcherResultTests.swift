import CeleryProtocol
import FnHostCore
import Testing

@Suite struct DispatcherResultTests {
    @Test func taskResultIsStoredAndDeliveryAcked() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 2, handlers: [
            "math.add": { request in
                let args = (try? JSONParser.parse(TaskBody(json: request.message.body).argsJSON))?.arrayValue ?? []
                let sum = args.compactMap(\.intValue).reduce(0, +)
                return .success(resultJSON: Array(String(sum).utf8))
            },
        ])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "sum-1", task: "math.add", args: [2, 3]))
        host.send(try taskMessage(id: "sum-2", task: "math.add", args: [40, 2]))

        let first = try #require(host.broker.waitForResult("sum-1", timeout: 10))
        #expect(first.status == .success)
        #expect(resultValue(first) == 5)
        #expect(resultValue(host.broker.waitForResult("sum-2", timeout: 10)) == 42)
        host.settle()
        #expect(host.broker.unackedCount == 0)
        #expect(host.broker.length(of: "math.add") == 0)
    }

    @Test func unknownTaskStoresNotRegisteredAndAcks() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "ghost-1", task: "math.nope"), to: "math.add")

        let meta = try #require(host.broker.waitForResult("ghost-1", timeout: 10))
        #expect(meta.status == .failure)
        #expect(resultValue(meta) == .object(["exc_type": "NotRegistered", "exc_message": ["math.nope"], "exc_module": "celery.exceptions"]))
        host.settle()
        #expect(host.broker.unackedCount == 0)
        #expect(host.executor.started.isEmpty)
    }

    /// An envelope for `id` built by kombu's layout, then altered by `change`.
    func alteredEnvelope(id: String, _ change: (inout JSONObject) -> Void) throws -> [UInt8] {
        let bytes = RedisEnvelope.encode(try taskMessage(id: id, task: "math.add"), queue: "math.add", deliveryTag: "raw-\(id)")
        var document = try #require(try JSONParser.parse(bytes).objectValue)
        change(&document)
        return JSONWriter.bytes(.object(document))
    }

    @Test func undecodableMessageWithIdStoresDecodeErrorAndAcks() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        host.start()
        defer { host.stop() }
        host.broker.sendRaw(try alteredEnvelope(id: "bad-b64") { $0["body"] = "%%% not base64 %%%" }, to: "math.add")
        host.broker.sendRaw(try alteredEnvelope(id: "bad-header") { doc in
            guard case .object(var headers)? = doc["headers"] else { return }
            headers["retries"] = "many"
            doc["headers"] = .object(headers)
        }, to: "math.add")

        for id in ["bad-b64", "bad-header"] {
            let meta = try #require(host.broker.waitForResult(id, timeout: 10))
            #expect(meta.status == .failure)
            #expect(resultValue(meta)?["exc_type"] == "DecodeError")
            #expect(resultValue(meta)?["exc_module"] == "kombu.exceptions")
        }
        host.settle()
        #expect(host.broker.unackedCount == 0)
        #expect(host.executor.started.isEmpty)
    }

    @Test func messageWithoutIdIsDroppedAndAcked() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        host.start()
        defer { host.stop() }
        host.broker.sendRaw(Array("not json at all".utf8), to: "math.add")
        host.broker.sendRaw(try alteredEnvelope(id: "x") { doc in
            guard case .object(var headers)? = doc["headers"] else { return }
            headers["id"] = nil
            doc["headers"] = .object(headers)
        }, to: "math.add")
        // A good message behind them: once it is settled, the ones before it were too (FIFO, ordered settlements).
        host.send(try taskMessage(id: "after", task: "math.add"))

        #expect(host.broker.waitForResult("after", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.broker.unackedCount == 0)
        #expect(host.broker.length(of: "math.add") == 0)
        #expect(host.executor.startedIds == ["after"])
    }

    @Test func disallowedContentIsNeverExecuted() throws {
        let host = try TestHost(functions: ["math.add": "{}"], concurrency: 1, handlers: ["math.add": succeed])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "pickled", task: "math.add", contentType: "application/x-python-serialize"))

        let meta = try #require(host.broker.waitForResult("pickled", timeout: 10))
        #expect(meta.status == .failure)
        #expect(resultValue(meta)?["exc_type"] == "ContentDisallowed")
        host.settle()
        #expect(host.broker.unackedCount == 0)
        #expect(host.executor.started.isEmpty)
    }

    @Test func ignoredResultIsNotStoredButAcked() throws {
        let host = try TestHost(functions: ["math.add": #"{"ignore_result": true}"#], concurrency: 1, handlers: ["math.add": succeed])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "quiet", task: "math.add"))
        host.send(try taskMessage(id: "loud", task: "math.add", ["ignore_result": false]))

        #expect(host.broker.waitForResult("loud", timeout: 10)?.status == .success)
        host.settle()
        #expect(host.executor.startedIds == ["quiet", "loud"])
        #expect(host.broker.result("quiet") == nil)
        #expect(host.broker.unackedCount == 0)
    }

    @Test func retryOutcomeRepublishesAndTheNextAttemptSucceeds() throws {
        let host = try TestHost(functions: ["flaky": #"{"max_retries": 2}"#], concurrency: 1, handlers: [
            "flaky": { request in
                request.message.retries == 0 ? .retry(countdown: 0, reason: "first try") : .success(resultJSON: Array("\"second\"".utf8))
            },
        ])
        host.start()
        defer { host.stop() }
        host.send(try taskMessage(id: "flaky-1", task: "flaky"))

        let meta = try #require(host.broker.waitForResult("flaky-1", timeout: 10))
        #expect(meta.status == .success)
        #expect(resultValue(meta) == "second")
        host.settle()
        #expect(host.executor.started.map(\.retries) == [0, 1])
        #expect(host.executor.startedIds == ["flaky-1", "flaky-1"])
        #expect(host.broker.unackedCount == 0)
        #expect(host.broker.length(of: "flaky") == 0)
    }

    @Test func earlyAckHappensBeforeTheTaskEnds() throws {
        let gate = Gate()
        let host = try TestHost(functions: ["slow": #"{"acks_late": false}"#], concurrency: 1, handlers: [
            "slow": { _ in gate.wait(); return .success(resultJSON: Array("1".utf8)) },
        ])
        host.start()
        defer { gate.open(); host.stop() }
        host.send(try taskMessage(id: "early", task: "slow"))

        #expect(eventually { host.executor.runningTotal == 1 })
        #expect(eventually { host.broker.unackedCount == 0 })
        #expect(host.broker.result("early") == nil)
        gate.open()
        #expect(host.broker.waitForResult("early", timeout: 10)?.status == .success)
    }
}
