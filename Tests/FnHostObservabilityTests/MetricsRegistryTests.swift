import FnHostObservability
import Testing

@Suite struct MetricsRegistryTests {
    @Test func exposesEveryFamilyWithHelpTypeAndSamples() {
        let m = MetricsRegistry()
        m.increment(MetricNames.taskSucceeded, ["math.add", "w@h", "math.add"])
        m.increment(MetricNames.taskSucceeded, ["math.add", "w@h", "math.add"], by: 2)
        m.set(MetricNames.queueLength, ["math.add"], 7)
        m.set(MetricNames.deadLetterDepth, [], 1)
        let text = m.exposition()
        for family in MetricNames.all {
            #expect(text.contains("# TYPE \(family.name) \(family.kind.rawValue)\n"))
            #expect(text.contains("# HELP \(family.name) "))
        }
        #expect(text.contains("celery_task_succeeded_total{name=\"math.add\",hostname=\"w@h\",queue_name=\"math.add\"} 3\n"))
        #expect(text.contains("celery_queue_length{queue_name=\"math.add\"} 7\n"))
        #expect(text.contains("fnhost_dead_letter_queue_length 1\n"))
    }

    @Test func histogramBucketsAreCumulativeWithSumAndCount() {
        let m = MetricsRegistry()
        let labels = ["t", "w", "q"]
        m.observe(MetricNames.taskRuntime, labels, 0.003)
        m.observe(MetricNames.taskRuntime, labels, 0.2)
        m.observe(MetricNames.taskRuntime, labels, 30)
        let text = m.exposition()
        let prefix = "celery_task_runtime_seconds_bucket{name=\"t\",hostname=\"w\",queue_name=\"q\","
        #expect(text.contains(prefix + "le=\"0.005\"} 1\n"))
        #expect(text.contains(prefix + "le=\"0.25\"} 2\n"))
        #expect(text.contains(prefix + "le=\"10\"} 2\n"))
        #expect(text.contains(prefix + "le=\"+Inf\"} 3\n"))
        #expect(text.contains("celery_task_runtime_seconds_count{name=\"t\",hostname=\"w\",queue_name=\"q\"} 3\n"))
        #expect(text.contains("celery_task_runtime_seconds_sum{name=\"t\",hostname=\"w\",queue_name=\"q\"} 30.203"))
    }

    @Test func seriesAddToTheSameSamplesAsLabelsAndStayAbsentUntilUsed() {
        let m = MetricsRegistry()
        let labels = ["math.add", "w@h", "math.add"]
        let succeeded = m.counter(MetricNames.taskSucceeded, labels)
        let runtime = m.histogram(MetricNames.taskRuntime, labels)
        // Made but never used: nothing written out.
        #expect(!m.exposition().contains("celery_task_succeeded_total{"))
        #expect(!m.exposition().contains("celery_task_runtime_seconds_count{"))
        #expect(m.value(MetricNames.taskSucceeded, labels) == nil)
        m.increment(succeeded)
        m.increment(MetricNames.taskSucceeded, labels, by: 2)
        m.increment(succeeded, by: -5)  // counters never go down
        m.observe(runtime, 0.003)
        m.observe(MetricNames.taskRuntime, labels, 0.2)
        #expect(m.value(MetricNames.taskSucceeded, labels) == 3)
        let text = m.exposition()
        #expect(text.contains("celery_task_succeeded_total{name=\"math.add\",hostname=\"w@h\",queue_name=\"math.add\"} 3\n"))
        #expect(text.contains("celery_task_runtime_seconds_count{name=\"math.add\",hostname=\"w@h\",queue_name=\"math.add\"} 2\n"))
    }

    @Test func labelValuesAreEscaped() {
        let m = MetricsRegistry()
        m.set(MetricNames.queueLength, ["a\"b\\c\nd"], 1)
        #expect(m.exposition().contains("celery_queue_length{queue_name=\"a\\\"b\\\\c\\nd\"} 1\n"))
    }

    @Test func countersNeverGoDownAndCollectorsRunBeforeExposition() {
        let m = MetricsRegistry()
        m.increment(MetricNames.brokerReconnects, ["w"], by: 2)
        m.increment(MetricNames.brokerReconnects, ["w"], by: -1)
        #expect(m.value(MetricNames.brokerReconnects, ["w"]) == 2)
        m.onCollect { $0.set(MetricNames.workerUp, ["w"], 1) }
        #expect(m.exposition().contains("celery_worker_up{hostname=\"w\"} 1\n"))
    }

    @Test func everyNameIsDefinedOnceWithCeleryExporterLabels() {
        let names = MetricNames.all.map(\.name)
        #expect(Set(names).count == names.count)
        for family in [MetricNames.taskSent, MetricNames.taskReceived, MetricNames.taskStarted, MetricNames.taskSucceeded,
                       MetricNames.taskRejected, MetricNames.taskRevoked, MetricNames.taskRetried, MetricNames.taskRuntime] {
            #expect(family.labels == ["name", "hostname", "queue_name"])
        }
        #expect(MetricNames.queueLength.labels == ["queue_name"])
        #expect(MetricNames.workerUp.labels == ["hostname"])
    }
}
