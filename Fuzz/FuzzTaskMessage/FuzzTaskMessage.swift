// libFuzzer target: the task message decoder (headers, content checks, body). See Fuzz/README.md.
import CeleryProtocol

/// Reads the input as a JSON headers table and as a task body, as the host and a worker
/// process do with what a producer sent. Any input may be refused; none may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTaskMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if case .object(let headers)? = try? JSONParser.parse(bytes) {
        if let message = try? TaskMessage(headers: headers, contentType: "application/json", contentEncoding: "utf-8", body: bytes) {
            _ = message.contentProblem()
            _ = (message.eta, message.expires, message.timeLimit, message.retries)
        }
        for key in ["eta", "expires"] {
            if let text = headers[key]?.stringValue { _ = CeleryTime.parse(text) }
        }
    }
    if let body = try? TaskBody(json: bytes) {
        _ = try? JSONParser.parse(body.argsJSON)
        _ = try? JSONParser.parse(body.kwargsJSON)
    }
    _ = MessageLimits(maxMessageSize: 1024).sizeProblem(size)
    return 0
}
