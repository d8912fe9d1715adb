import FnHostPool
import Testing

@Suite struct RecyclePolicyTests {
    @Test func neverRecyclesWithoutLimits() {
        #expect(RecyclePolicy.never.shouldRecycle(tasksRun: 1_000_000, rssKB: 1 << 30) == nil)
        #expect(!RecyclePolicy.never.needsResidentMemory)
    }

    @Test func recyclesAfterTheNthTaskNotBefore() {
        let policy = RecyclePolicy(maxTasksPerChild: 3)
        #expect(policy.shouldRecycle(tasksRun: 1, rssKB: nil) == nil)
        #expect(policy.shouldRecycle(tasksRun: 2, rssKB: nil) == nil)
        #expect(policy.shouldRecycle(tasksRun: 3, rssKB: nil) == .maxTasksPerChild(limit: 3))
        #expect(!policy.needsResidentMemory)
    }

    @Test func maxTasksPerChildOfOneRecyclesAfterEveryTask() {
        #expect(RecyclePolicy(maxTasksPerChild: 1).shouldRecycle(tasksRun: 1, rssKB: nil) == .maxTasksPerChild(limit: 1))
    }

    @Test func recyclesOnlyAboveTheMemoryLimit() {
        let policy = RecyclePolicy(maxMemoryPerChild: 2048)
        #expect(policy.needsResidentMemory)
        #expect(policy.shouldRecycle(tasksRun: 1, rssKB: 2048) == nil)
        #expect(policy.shouldRecycle(tasksRun: 1, rssKB: 2049) == .maxMemoryPerChild(rssKB: 2049, limitKB: 2048))
    }

    @Test func unknownResidentMemoryIsNeverAReason() {
        #expect(RecyclePolicy(maxMemoryPerChild: 1).shouldRecycle(tasksRun: 5, rssKB: nil) == nil)
    }

    @Test func zeroOrNegativeLimitsMeanNoLimitAsInCelery() {
        let policy = RecyclePolicy(maxTasksPerChild: 0, maxMemoryPerChild: -1)
        #expect(policy == .never)
        #expect(policy.shouldRecycle(tasksRun: 100, rssKB: 100_000) == nil)
    }

    @Test func theTaskCountIsReportedFirstWhenBothLimitsAreReached() {
        let policy = RecyclePolicy(maxTasksPerChild: 2, maxMemoryPerChild: 10)
        #expect(policy.shouldRecycle(tasksRun: 2, rssKB: 50) == .maxTasksPerChild(limit: 2))
        #expect(policy.shouldRecycle(tasksRun: 1, rssKB: 50) == .maxMemoryPerChild(rssKB: 50, limitKB: 10))
    }

    @Test func reasonsNameTheSettingAndTheFigures() {
        #expect(RecyclePolicy.Reason.maxTasksPerChild(limit: 2).description == "it has run 2 tasks (max_tasks_per_child 2)")
        let memory = RecyclePolicy.Reason.maxMemoryPerChild(rssKB: 5120, limitKB: 1).description
        #expect(memory.contains("5120 KB") && memory.contains("max_memory_per_child (1 KB)"))
    }
}
