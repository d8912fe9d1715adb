import CeleryProtocol
import FnHostCore
import FnHostObservability
import Testing

/// Task events become celery-exporter's counters, per task name and queue, through the series
/// TaskMetrics keeps.
@Suite struct TaskMetricsTests {
    private func request(_ task: String, queue: String, id: String) throws -> TaskRequest {
        let headers: JSONObject = ["lang": "py", "task": .string(task), "id": .string(id), "retries": 0, "root_id": .string(id)]
        let message = try TaskMessage(headers: headers, contentType: "application/json", contentEncoding: "utf-8",
                                      body: Array("[[], {}, {}]".utf8), correlationId: id, replyTo: nil)
        let delivery = Delivery(queue: queue, tag: "tag-\(id)", source: queue, payload: [], message: .success(message))
        let function = RegisteredFunction(name: task, kind: .task, options: TaskOptions(), plugin: "libmath.so")
        return TaskRequest(delivery: delivery, message: message, function: function)
    }

    @Test func eventsCountPerTaskAndQueue() throws {
        let registry = MetricsRegistry()
        let metrics = TaskMetrics(registry: registry, hostname: "w@h")
        for i in 0..<3 {
            let r = try request("math.add", queue: "math.add", id: "a-\(i)")
            metrics.observe(.received(r))
            metrics.observe(.started(r))
            metrics.observe(.succeeded(r, resultJSON: Array("5".utf8), runtime: 0.001))
        }
        let other = try request("math.add", queue: "shared", id: "b-0")
        metrics.observe(.received(other))
        metrics.observe(.started(other))
        metrics.observe(.failed(other, exception: TaskException(type: "ValueError", module: "builtins", message: "no"),
                                traceback: nil, runtime: 0.002))
        #expect(registry.value(MetricNames.taskReceived, ["math.add", "w@h", "math.add"]) == 3)
        #expect(registry.value(MetricNames.taskSucceeded, ["math.add", "w@h", "math.add"]) == 3)
        #expect(registry.value(MetricNames.taskReceived, ["math.add", "w@h", "shared"]) == 1)
        #expect(registry.value(MetricNames.taskSucceeded, ["math.add", "w@h", "shared"]) == nil)
        #expect(registry.value(MetricNames.taskFailed, ["math.add", "w@h", "shared", "ValueError"]) == 1)
        let text = registry.exposition()
        #expect(text.contains("celery_task_runtime_seconds_count{name=\"math.add\",hostname=\"w@h\",queue_name=\"math.add\"} 3\n"))
        #expect(text.contains("celery_task_runtime_seconds_count{name=\"math.add\",hostname=\"w@h\",queue_name=\"shared\"} 1\n"))
    }
}
