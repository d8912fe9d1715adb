#if canImport(Glibc)
import Glibc
#endif

/// Blocking frame I/O over one end of a socketpair.
///
/// Threading: one thread reads (`receive`); writes and `close` are serialized by the caller.
/// Once closed, the channel writes nothing: its descriptor number may already belong to
/// another connection (a new worker's socket), which must never receive this one's frames.
public final class FrameChannel: @unchecked Sendable {
    public let fd: Int32
    private var decoder = FrameDecoder()
    private var readBuffer = [UInt8](repeating: 0, count: 1 << 16)
    private var closed = false

    public init(fd: Int32) { self.fd = fd }

    /// Writes a whole frame; false when the peer is gone or the channel is closed.
    @discardableResult
    public func send(_ frame: Frame) -> Bool {
        guard !closed else { return false }
        let bytes = frame.encoded()
        return bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }

    /// The next frame, or `nil` at end of stream or on a read or decoding error.
    public func receive() -> Frame? {
        while true {
            do {
                if let frame = try decoder.next() { return frame }
            } catch {
                return nil
            }
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return nil }
            decoder.feed(readBuffer[0..<n])
        }
    }

    /// Closes the descriptor, once; later sends return false.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
    }
}
