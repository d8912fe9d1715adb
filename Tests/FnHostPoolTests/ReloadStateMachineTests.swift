import FnHostPool
import Testing

/// The hot-reload state machine, driven with a manual clock: no processes, no sleeps.
@Suite struct ReloadStateMachineTests {
    typealias Generation = ReloadStateMachine.Generation

    /// A machine serving libmath.so (generation 1, path p1) since t = 0.
    func serving() -> ReloadStateMachine {
        var m = ReloadStateMachine(quietPeriod: 0.25, maxDelay: 2, drainWarning: 60)
        m.started(serving: ["libmath.so": "p1"])
        return m
    }

    // MARK: When a reload starts

    @Test func aChangeIsActedOnOnceTheDirectoryIsQuiet() {
        var m = serving()
        #expect(m.nextReload == nil)
        m.changeObserved(now: 10.0)
        m.changeObserved(now: 10.1)  // a build writing the file in several steps
        m.changeObserved(now: 10.2)
        #expect(m.nextReload == 10.45)
        do {
            let r = m.reloadStarted(now: 10.44)
            #expect(!r)
        }
        do {
            let r = m.reloadStarted(now: 10.45)
            #expect(r)
        }
        #expect(m.nextReload == nil)
    }

    @Test func aBusyDirectoryIsReloadedAtTheLatestMaxDelayAfterTheFirstChange() {
        var m = serving()
        var t = 0.0
        while t < 5 {
            m.changeObserved(now: t)
            if m.reloadStarted(now: t) { break }
            t += 0.1
        }
        #expect(abs(t - 2.0) < 1e-9)
    }

    @Test func aRequestIsDueAtOnce() {
        var m = serving()
        m.reloadRequested(now: 3)
        do {
            let r = m.reloadStarted(now: 3)
            #expect(r)
        }
    }

    @Test func changesDuringAReloadLeadToOneMoreReloadAfterIt() {
        var m = serving()
        m.reloadRequested(now: 0)
        do {
            let r = m.reloadStarted(now: 0)
            #expect(r)
        }
        m.changeObserved(now: 0.1)
        m.reloadRequested(now: 0.2)
        #expect(m.nextReload == nil)  // one reload at a time
        do {
            let r = m.reloadStarted(now: 0.3)
            #expect(!r)
        }
        m.reloadFinished(now: 0.5)
        do {
            let r = m.reloadStarted(now: 0.5)
            #expect(r)  // the request is due at once
        }
        m.reloadFinished(now: 0.6)
        #expect(m.nextReload == nil)
        do {
            let r = m.reloadStarted(now: 100)
            #expect(!r)
        }
    }

    // MARK: Generations

    @Test func anUnchangedDirectoryProbesNothing() {
        var m = serving()
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1")], now: 1)
            #expect(r.isEmpty)
        }
        #expect(m.serving("libmath.so") == Generation(plugin: "libmath.so", number: 1, path: "p1"))
    }

    @Test func aChangedPluginIsProbedThenServedAndTheOldGenerationDrains() {
        var m = serving()
        let g1 = Generation(plugin: "libmath.so", number: 1, path: "p1")
        let g2 = Generation(plugin: "libmath.so", number: 2, path: "p2")
        do {
            let r = m.scanned(["libmath.so": .version(path: "p2")], now: 1)
            #expect(r == [.probe(g2)])
        }
        // Until the probe succeeds, generation 1 serves.
        #expect(m.serving("libmath.so") == g1)
        do {
            let r = m.probeSucceeded(g2, now: 2)
            #expect(r == [.activate(g2, replacing: g1)])
        }
        #expect(m.serving("libmath.so") == g2)
        #expect(m.drainingGenerations == [g1])
        do {
            let r = m.drainChecked(g1, processes: 1, now: 3)
            #expect(r.isEmpty)
        }
        do {
            let r = m.drainChecked(g1, processes: 0, now: 4)
            #expect(r == [.drained(g1)])
        }
        #expect(m.drainingGenerations.isEmpty)
    }

    @Test func aGenerationStillDrainingLongAfterIsReportedOnce() {
        var m = serving()
        let g1 = Generation(plugin: "libmath.so", number: 1, path: "p1")
        let g2 = Generation(plugin: "libmath.so", number: 2, path: "p2")
        _ = m.scanned(["libmath.so": .version(path: "p2")], now: 0)
        _ = m.probeSucceeded(g2, now: 10)
        do {
            let r = m.drainChecked(g1, processes: 1, now: 69.9)
            #expect(r.isEmpty)
        }
        do {
            let r = m.drainChecked(g1, processes: 1, now: 70)
            #expect(r == [.overdue(g1, seconds: 60)])
        }
        do {
            let r = m.drainChecked(g1, processes: 1, now: 200)
            #expect(r.isEmpty)
        }
        do {
            let r = m.drainChecked(g1, processes: 0, now: 300)
            #expect(r == [.drained(g1)])
        }
    }

    @Test func aFailedProbeKeepsTheServingGenerationAndTheSameVersionIsNotProbedAgain() {
        var m = serving()
        let g1 = Generation(plugin: "libmath.so", number: 1, path: "p1")
        let g2 = Generation(plugin: "libmath.so", number: 2, path: "bad")
        do {
            let r = m.scanned(["libmath.so": .version(path: "bad")], now: 1)
            #expect(r == [.probe(g2)])
        }
        do {
            let r = m.probeFailed(g2, reason: "init returned 1", now: 2)
            #expect(r == [.keep(plugin: "libmath.so", serving: g1, reason: "init returned 1")])
        }
        #expect(m.serving("libmath.so") == g1)
        #expect(m.drainingGenerations.isEmpty)
        #expect(m.status == [.init(plugin: "libmath.so", serving: g1, failure: "init returned 1")])
        // Another reload with the same broken file: nothing to do.
        do {
            let r = m.scanned(["libmath.so": .version(path: "bad")], now: 3)
            #expect(r.isEmpty)
        }
        // A fixed build is probed and replaces generation 1.
        let g3 = Generation(plugin: "libmath.so", number: 3, path: "p3")
        do {
            let r = m.scanned(["libmath.so": .version(path: "p3")], now: 4)
            #expect(r == [.probe(g3)])
        }
        do {
            let r = m.probeSucceeded(g3, now: 5)
            #expect(r == [.activate(g3, replacing: g1)])
        }
        #expect(m.status == [.init(plugin: "libmath.so", serving: g3, failure: nil)])
    }

    @Test func aRefusalThatDependsOnOtherPluginsIsRetried() {
        var m = serving()
        let g = Generation(plugin: "libzz.so", number: 1, path: "z")
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1"), "libzz.so": .version(path: "z")], now: 1)
            #expect(r == [.probe(g)])
        }
        _ = m.probeFailed(g, reason: "duplicate task name", retryUnchanged: true, now: 2)
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1"), "libzz.so": .version(path: "z")], now: 3)
            #expect(r == [.probe(Generation(plugin: "libzz.so", number: 2, path: "z"))])
        }
    }

    @Test func aRefusedFileKeepsTheServingGenerationAndIsReportedOnce() {
        var m = serving()
        let g1 = Generation(plugin: "libmath.so", number: 1, path: "p1")
        do {
            let r = m.scanned(["libmath.so": .refused(reason: "untrusted")], now: 1)
            #expect(r == [.keep(plugin: "libmath.so", serving: g1, reason: "untrusted")])
        }
        do {
            let r = m.scanned(["libmath.so": .refused(reason: "untrusted")], now: 2)
            #expect(r.isEmpty)
        }
        #expect(m.serving("libmath.so") == g1)
        // Fixed (chmod go-w): the same version serves on, without a probe.
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1")], now: 3)
            #expect(r.isEmpty)
        }
        #expect(m.status == [.init(plugin: "libmath.so", serving: g1, failure: nil)])
    }

    @Test func aRemovedPluginIsRetiredAndForgotten() {
        var m = serving()
        let g1 = Generation(plugin: "libmath.so", number: 1, path: "p1")
        do {
            let r = m.scanned([:], now: 1)
            #expect(r == [.retire(g1)])
        }
        #expect(m.serving("libmath.so") == nil)
        #expect(m.status.isEmpty)
        #expect(m.drainingGenerations == [g1])
        // Put back: probed as a new generation, numbered after the last one.
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1")], now: 2)
            #expect(r == [.probe(Generation(plugin: "libmath.so", number: 2, path: "p1"))])
        }
    }

    @Test func aNewPluginIsProbedAndServedWithNothingToDrain() {
        var m = serving()
        let g = Generation(plugin: "libnew.so", number: 1, path: "n")
        do {
            let r = m.scanned(["libmath.so": .version(path: "p1"), "libnew.so": .version(path: "n")], now: 1)
            #expect(r == [.probe(g)])
        }
        do {
            let r = m.probeSucceeded(g, now: 2)
            #expect(r == [.activate(g, replacing: nil)])
        }
        #expect(m.drainingGenerations.isEmpty)
    }

    @Test func aStaleProbeResultIsIgnored() {
        var m = serving()
        let g2 = Generation(plugin: "libmath.so", number: 2, path: "p2")
        _ = m.scanned(["libmath.so": .version(path: "p2")], now: 1)
        do {
            let r = m.probeSucceeded(Generation(plugin: "libmath.so", number: 7, path: "p7"), now: 2)
            #expect(r.isEmpty)
        }
        do {
            let r = m.probeFailed(Generation(plugin: "libother.so", number: 1, path: "o"), reason: "x", now: 2)
            #expect(r.isEmpty)
        }
        do {
            let r = m.probeSucceeded(g2, now: 3)
            #expect(r.count == 1)
        }
    }

    @Test func aPluginThatFailedAtStartIsReportedAndProbedAtTheFirstReload() {
        var m = ReloadStateMachine()
        m.started(serving: ["libmath.so": "p1"], failed: ["libbad.so": "init returned 1"])
        #expect(m.status.map(\.plugin) == ["libbad.so", "libmath.so"])
        #expect(m.status.first?.failure == "init returned 1")
        #expect(m.status.first?.serving == nil)
        let r = m.scanned(["libmath.so": .version(path: "p1"), "libbad.so": .version(path: "b")], now: 1)
        #expect(r == [.probe(Generation(plugin: "libbad.so", number: 2, path: "b"))])
    }
}
