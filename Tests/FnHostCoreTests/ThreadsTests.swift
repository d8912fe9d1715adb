import FnHostCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `startThread` / `startDetachedThread`: a joinable thread is joined once however many stop
/// paths join it; a detached thread gives its stack back when it ends; both carry their name.
@Suite struct ThreadsTests {
    private static func mappedRegions() -> Int {
        guard let f = fopen("/proc/self/maps", "r") else { return -1 }
        defer { fclose(f) }
        var count = 0
        while true {
            let c = getc(f)
            if c == EOF { return count }
            if c == 10 { count += 1 }
        }
    }

    private static func ownName() -> String {
        guard let f = fopen("/proc/thread-self/comm", "r") else { return "" }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 32)
        _ = fgets(&buffer, 32, f)
        return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func everyJoinReturnsOnceTheThreadHasEndedFromAnyNumberOfCallers() {
        let gate = Gate()
        let ended = Gate()
        let worker = startThread(name: "test-worker") {
            gate.wait()
            ended.open()
        }
        let joiners = (0..<4).map { _ in startThread(name: "test-joiner") { worker.join() } }
        gate.open()
        worker.join()
        ended.wait()  // already open: join returned after the body
        for j in joiners { j.join() }
        worker.join()  // and again, long after: returns at once
        for j in joiners { j.join() }
    }

    @Test func aThreadJoiningItselfReturnsAndIsStillJoinedFromOutside() {
        final class Box: @unchecked Sendable { var thread: JoinableThread? }
        let box = Box()
        let started = Gate()
        let selfJoined = Gate()
        let t = startThread(name: "test-self") {
            started.wait()
            box.thread?.join()  // on its own thread: returns instead of deadlocking
            selfJoined.open()
        }
        box.thread = t
        started.open()
        selfJoined.wait()
        t.join()
    }

    @Test func detachedThreadsThatEndGiveTheirStacksBack() {
        // A joinable thread that nobody joins keeps its stack (and guard page) mapped for the
        // life of the process: a host that recycled worker processes grew by two regions per
        // worker until thread creation failed.
        let threads = 300
        for _ in 0..<5 { runDetached() }  // warm up: the C library's own first allocations
        let before = Self.mappedRegions()
        for _ in 0..<threads { runDetached() }
        let grown = Self.mappedRegions() - before
        #expect(grown < threads / 3, "\(grown) regions more after \(threads) detached threads ended")
    }

    private func runDetached() {
        let done = Gate()
        startDetachedThread(name: "test-detached") { done.open() }
        done.wait()
    }

    @Test func threadsCarryTheirNamesTruncatedToWhatTheKernelKeeps() {
        final class Names: @unchecked Sendable { var joinable = ""; var detached = "" }
        let names = Names()
        startThread(name: "fnhost-consumer") { names.joinable = Self.ownName() }.join()
        let done = Gate()
        startDetachedThread(name: "fnhost-amqp-heartbeat") {
            names.detached = Self.ownName()
            done.open()
        }
        done.wait()
        #expect(names.joinable == "fnhost-consumer")
        #expect(names.detached == "fnhost-amqp-hea")
    }
}
