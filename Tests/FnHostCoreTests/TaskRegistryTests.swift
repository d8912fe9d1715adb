import CeleryProtocol
import FnHostCore
import Testing

@Suite struct TaskRegistryTests {
    func function(_ name: String, plugin: String, _ options: TaskOptions = TaskOptions()) -> RegisteredFunction {
        RegisteredFunction(name: name, kind: .task, options: options, plugin: plugin)
    }

    @Test func duplicateNameRefusesTheLaterPluginNamingTaskAndFirstPlugin() throws {
        var registry = TaskRegistry()
        let accepted = registry.add(plugin: "liba.so", functions: [function("add", plugin: "liba.so"), function("mul", plugin: "liba.so")])
        #expect(accepted == nil)
        let refused = registry.add(plugin: "libb.so", functions: [function("sub", plugin: "libb.so"), function("add", plugin: "libb.so")])
        let failure = try #require(refused)
        #expect(failure.plugin == "libb.so")
        #expect(failure.reason.contains("'add'"))
        #expect(failure.reason.contains("liba.so"))
        #expect(registry.failures == [failure])
        // The first plugin keeps the task; the later plugin is refused as a whole.
        #expect(registry["add"]?.plugin == "liba.so")
        #expect(registry["sub"] == nil)
        #expect(registry.sorted.map(\.name) == ["add", "mul"])
    }

    @Test func pluginsWithDistinctNamesAreAllAdded() {
        var registry = TaskRegistry()
        registry.add(plugin: "liba.so", functions: [function("a", plugin: "liba.so")])
        registry.add(plugin: "libb.so", functions: [function("b", plugin: "libb.so", { var o = TaskOptions(); o.queue = "shared"; return o }())])
        #expect(registry.failures.isEmpty)
        #expect(registry.sorted.map(\.name) == ["a", "b"])
        #expect(registry.queues == ["a", "shared"])
    }

    @Test func overridesApplyOverPluginOptions() {
        var registry = TaskRegistry()
        registry.add(plugin: "liba.so", functions: [function("add", plugin: "liba.so"), function("mul", plugin: "liba.so")])
        let errors = registry.applyOverrides(["add": ["queue": "fast", "concurrency": 2, "acks_late": false]])
        #expect(errors.isEmpty)
        #expect(registry["add"]?.options.queue == "fast")
        #expect(registry["add"]?.options.concurrency == 2)
        #expect(registry["add"]?.options.acksLate == false)
        #expect(registry["add"]?.queue == "fast")
        #expect(registry["mul"]?.options == TaskOptions())
        #expect(registry.queues == ["fast", "mul"])
    }

    @Test func invalidOverrideIsReportedAndKeepsPluginOptions() {
        var registry = TaskRegistry()
        var options = TaskOptions()
        options.concurrency = 3
        registry.add(plugin: "liba.so", functions: [function("add", plugin: "liba.so", options)])
        let errors = registry.applyOverrides(["add": ["concurrency": 0], "missing": ["queue": "q"]])
        #expect(errors.count == 2)
        #expect(errors.contains { $0.hasPrefix("tasks.add:") && $0.contains("concurrency") })
        #expect(errors.contains { $0.hasPrefix("tasks.missing:") })
        #expect(registry["add"]?.options.concurrency == 3)
    }
}
