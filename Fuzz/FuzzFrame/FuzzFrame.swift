// libFuzzer target: the IPC frame decoder between the host and its worker processes. See Fuzz/README.md.
import FnHostIPC

/// Feeds the input to a frame decoder in two pieces (split at the first byte's value) and
/// takes every frame out, then re-encodes each and checks it decodes to the same frame. Any
/// input may be refused; none may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = min(bytes.count, Int(bytes.first ?? 0))
    var decoder = FrameDecoder()
    decoder.feed(bytes[..<split])
    var frames: [Frame] = []
    while let frame = try? decoder.next() { frames.append(frame) }
    decoder.feed(bytes[split...])
    while let frame = try? decoder.next() { frames.append(frame) }
    for frame in frames {
        var again = FrameDecoder()
        again.feed(frame.encoded())
        guard let copy = try? again.next() else { fatalError("an encoded frame does not decode: \(frame)") }
        if case .run(let task) = frame, let soft = task.softTimeLimit, soft.isNaN { continue }  // NaN != NaN
        if case .outcome(_, let outcome) = frame, "\(outcome)".contains("nan") { continue }
        precondition(copy == frame, "a frame changed in an encode/decode round trip: \(frame) -> \(copy)")
    }
    return 0
}
