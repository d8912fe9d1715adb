import FnHostObservability
import Testing

@Suite struct HealthPolicyTests {
    let policy = HealthPolicy(stallTimeout: 30)

    func facts(progress: Double = 1, connected: Bool = true, waiting: Int? = 0, free: Int = 2, functions: Int = 3,
               running: Bool = true, shuttingDown: Bool = false) -> HealthPolicy.Facts {
        .init(consumerRunning: running, secondsSinceProgress: progress, brokerConnected: connected, waitingMessages: waiting,
              freeSlots: free, functionsLoaded: functions, shuttingDown: shuttingDown)
    }

    @Test func aConsumingHostIsLiveAndReady() {
        #expect(policy.liveness(facts()).ok)
        #expect(policy.readiness(facts()).ok)
    }

    @Test func aStalledConsumerWithWorkWaitingAndFreeSlotsIsNotLive() {
        let v = policy.liveness(facts(progress: 31, waiting: 5))
        #expect(!v.ok)
        #expect(v.reason.contains("5 messages wait"))
    }

    @Test func aStallIsNotAFailureWithoutWaitingWorkOrFreeSlotsOrAnAnswer() {
        #expect(policy.liveness(facts(progress: 300, waiting: 0)).ok)
        #expect(policy.liveness(facts(progress: 300, waiting: 9, free: 0)).ok)
        #expect(policy.liveness(facts(progress: 300, waiting: nil)).ok)
        #expect(policy.liveness(facts(progress: 29, waiting: 9)).ok)
    }

    @Test func aStoppedConsumerIsNotLiveUnlessShuttingDown() {
        #expect(!policy.liveness(facts(running: false)).ok)
        #expect(policy.liveness(facts(running: false, shuttingDown: true)).ok)
    }

    @Test func readinessNeedsABrokerAFunctionAndNoShutdown() {
        #expect(policy.readiness(facts(connected: false)) == .init(ok: false, reason: "no broker connection"))
        #expect(policy.readiness(facts(functions: 0)) == .init(ok: false, reason: "no function is loaded"))
        #expect(!policy.readiness(facts(shuttingDown: true)).ok)
        // A broker outage does not fail liveness: a restart would not bring the broker back.
        #expect(policy.liveness(facts(progress: 300, connected: false, waiting: nil)).ok)
    }
}
