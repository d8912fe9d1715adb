import FnHostIPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `FrameChannel` over a socketpair: frames cross intact, and a closed channel writes nothing,
/// even when its descriptor number has been given to a new socket.
@Suite struct FrameChannelTests {
    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    private func pending(_ fd: Int32) -> Int {
        var count: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &count)
        return Int(count)
    }

    @Test func aFrameSentArrivesWhole() {
        let (a, b) = socketPair()
        let sender = FrameChannel(fd: a)
        let receiver = FrameChannel(fd: b)
        defer { sender.close(); receiver.close() }
        #expect(sender.send(.shutdown))
        #expect(receiver.receive() == .shutdown)
    }

    @Test func aClosedChannelWritesNothingToTheSocketThatReusedItsNumber() {
        let (a, b) = socketPair()
        let old = FrameChannel(fd: a)
        old.close()
        close(b)
        // The lowest free numbers: most often `a` and `b` again, now another connection's.
        let (c, d) = socketPair()
        defer { close(c); close(d) }
        #expect(!old.send(.shutdown))
        #expect(pending(c) == 0 && pending(d) == 0)
        old.close()  // a second close does not close the number's new owner
        #expect(fcntl(c, F_GETFD) != -1 && fcntl(d, F_GETFD) != -1)
    }
}
