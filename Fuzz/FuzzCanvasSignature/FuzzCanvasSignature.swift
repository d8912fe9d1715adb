// libFuzzer target: the canvas signature decoder (callbacks, errbacks, chain, chord). See Fuzz/README.md.
import CeleryProtocol

/// Reads the input as a task body's embed and as one signature, as the outcome handler does
/// when a task with a canvas finishes. Any input may be refused; none may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCanvasSignature(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? CanvasEmbed(body: bytes)
    if let json = try? JSONParser.parse(bytes) {
        _ = try? CanvasEmbed(json: json)
        if let signature = try? Signature(json: json) {
            for key in ["link", "link_error", "chord", "tasks"] { _ = try? signature.signatures(option: key) }
        }
        _ = try? Signature.list(json, what: "fuzz")
    }
    return 0
}
