import CeleryProtocol
import FnHostCore

/// A message between the host and a worker process over their socketpair.
///
/// Wire format: `[u32 LE length][u8 kind][fields...]`, each field `[u32 LE length][bytes]`;
/// the length counts everything after itself. Frames larger than `Frame.maxLength` are refused.
public enum Frame: Sendable, Equatable {
    /// Host -> worker: run a task. The body is the message body exactly as the producer sent it.
    case run(RunTask)
    /// Host -> worker: finish (call `fnhost_plugin_fini`) and exit 0.
    case shutdown
    /// Worker -> host: the plugin loaded; its registry as JSON (see `LoadedPlugin.registryJSON`).
    case ready(registryJSON: [UInt8])
    /// Worker -> host: the plugin could not be loaded; the process exits next.
    case loadFailed(reason: String)
    /// Worker -> host: how a task ended.
    case outcome(taskId: String, TaskOutcome)

    /// The largest frame accepted (a Redis string is at most 512 MiB).
    public static let maxLength = 600 << 20

    /// A task to run, as the worker needs it.
    public struct RunTask: Sendable, Equatable {
        public var taskId: String
        public var taskName: String
        public var retries: Int
        /// Seconds until `should_stop` says 1; `nil` for no soft limit.
        public var softTimeLimit: Double?
        public var body: [UInt8]
        /// Bytes of address space the task may add to its process (`memory_limit`); `nil`: none.
        public var memoryLimit: Int?

        public init(taskId: String, taskName: String, retries: Int, softTimeLimit: Double?, body: [UInt8], memoryLimit: Int? = nil) {
            self.taskId = taskId
            self.taskName = taskName
            self.retries = retries
            self.softTimeLimit = softTimeLimit
            self.body = body
            self.memoryLimit = memoryLimit
        }
    }

    /// Why bytes are not a frame.
    public struct DecodingError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }
}

extension Frame {
    private enum Kind: UInt8 {
        case run = 1, shutdown = 2, ready = 10, loadFailed = 11, outcome = 12
    }

    private enum OutcomeKind: String {
        case success, failure, retry, rejected, workerLost, timeLimit
    }

    /// The frame's bytes, length prefix included.
    public func encoded() -> [UInt8] {
        var fields: [[UInt8]] = []
        let kind: Kind
        func s(_ text: String) -> [UInt8] { Array(text.utf8) }
        switch self {
        case .run(let task):
            kind = .run
            fields = [s(task.taskId), s(task.taskName), s(String(task.retries)), s(task.softTimeLimit.map { String($0) } ?? ""), task.body,
                      s(task.memoryLimit.map { String($0) } ?? "")]
        case .shutdown:
            kind = .shutdown
        case .ready(let json):
            kind = .ready
            fields = [json]
        case .loadFailed(let reason):
            kind = .loadFailed
            fields = [s(reason)]
        case .outcome(let id, let outcome):
            kind = .outcome
            switch outcome {
            case .success(let json): fields = [s(id), s(OutcomeKind.success.rawValue), json]
            case .failure(let e, let tb): fields = [s(id), s(OutcomeKind.failure.rawValue), s(e.type), s(e.module), s(e.message), s(tb ?? "")]
            case .retry(let countdown, let reason): fields = [s(id), s(OutcomeKind.retry.rawValue), s(countdown.map { String($0) } ?? ""), s(reason)]
            case .rejected(let problem): fields = [s(id), s(OutcomeKind.rejected.rawValue), s(problem.kind == .contentDisallowed ? "content" : "body"), s(problem.reason)]
            case .workerLost(let how): fields = [s(id), s(OutcomeKind.workerLost.rawValue), s(how)]
            case .timeLimitExceeded(let seconds): fields = [s(id), s(OutcomeKind.timeLimit.rawValue), s(String(seconds))]
            }
        }
        let length = 1 + fields.reduce(0) { $0 + 4 + $1.count }
        var out: [UInt8] = []
        out.reserveCapacity(4 + length)
        Self.appendU32(UInt32(length), to: &out)
        out.append(kind.rawValue)
        for field in fields {
            Self.appendU32(UInt32(field.count), to: &out)
            out.append(contentsOf: field)
        }
        return out
    }

    static func appendU32(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8 & 0xFF)); out.append(UInt8(v >> 16 & 0xFF)); out.append(UInt8(v >> 24))
    }

    /// Decodes one frame's payload (after the length prefix).
    static func decode(payload: ArraySlice<UInt8>) throws(DecodingError) -> Frame {
        guard let first = payload.first, let kind = Kind(rawValue: first) else {
            throw DecodingError(description: "unknown frame kind \(payload.first.map { String($0) } ?? "(empty)")")
        }
        var fields: [[UInt8]] = []
        var i = payload.startIndex + 1
        while i < payload.endIndex {
            guard payload.endIndex - i >= 4 else { throw DecodingError(description: "truncated field length") }
            let n = Int(payload[i]) | Int(payload[i + 1]) << 8 | Int(payload[i + 2]) << 16 | Int(payload[i + 3]) << 24
            i += 4
            guard payload.endIndex - i >= n else { throw DecodingError(description: "truncated field") }
            fields.append(Array(payload[i..<(i + n)]))
            i += n
        }
        func text(_ k: Int) throws(DecodingError) -> String {
            guard k < fields.count else { throw DecodingError(description: "missing field \(k) in frame kind \(kind)") }
            guard let s = String(validUTF8: fields[k]) else { throw DecodingError(description: "field \(k) is not UTF-8") }
            return s
        }
        func count(_ n: Int) throws(DecodingError) {
            guard fields.count == n else { throw DecodingError(description: "frame kind \(kind) has \(fields.count) fields, expected \(n)") }
        }
        switch kind {
        case .run:
            try count(6)
            guard let retries = Int(try text(2)) else { throw DecodingError(description: "bad retries") }
            let soft = try text(3)
            let memory = try text(5)
            guard memory.isEmpty || Int(memory) != nil else { throw DecodingError(description: "bad memory limit") }
            return .run(RunTask(taskId: try text(0), taskName: try text(1), retries: retries,
                                softTimeLimit: soft.isEmpty ? nil : Double(soft), body: fields[4], memoryLimit: Int(memory)))
        case .shutdown:
            try count(0)
            return .shutdown
        case .ready:
            try count(1)
            return .ready(registryJSON: fields[0])
        case .loadFailed:
            try count(1)
            return .loadFailed(reason: try text(0))
        case .outcome:
            guard fields.count >= 2, let outcomeKind = OutcomeKind(rawValue: try text(1)) else {
                throw DecodingError(description: "bad outcome frame")
            }
            let id = try text(0)
            switch outcomeKind {
            case .success:
                try count(3)
                return .outcome(taskId: id, .success(resultJSON: fields[2]))
            case .failure:
                try count(6)
                let tb = try text(5)
                return .outcome(taskId: id, .failure(TaskException(type: try text(2), module: try text(3), message: try text(4)), traceback: tb.isEmpty ? nil : tb))
            case .retry:
                try count(4)
                let c = try text(2)
                return .outcome(taskId: id, .retry(countdown: c.isEmpty ? nil : Double(c), reason: try text(3)))
            case .rejected:
                try count(4)
                let problemKind: MessageDecodingError.Kind = try text(2) == "content" ? .contentDisallowed : .undecodableBody
                return .outcome(taskId: id, .rejected(MessageDecodingError(problemKind, try text(3), taskId: id)))
            case .workerLost:
                try count(3)
                return .outcome(taskId: id, .workerLost(how: try text(2)))
            case .timeLimit:
                try count(3)
                return .outcome(taskId: id, .timeLimitExceeded(seconds: Double(try text(2)) ?? 0))
            }
        }
    }
}

/// Reassembles frames from a byte stream fed in pieces of any size.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    /// Adds bytes read from the socket.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or `nil` when more bytes are needed.
    public mutating func next() throws(Frame.DecodingError) -> Frame? {
        let available = buffer.count - start
        guard available >= 4 else { return nil }
        let n = Int(buffer[start]) | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 24
        guard n >= 1, n <= Frame.maxLength else { throw Frame.DecodingError(description: "frame length \(n) out of bounds") }
        guard available >= 4 + n else { return nil }
        let payload = buffer[(start + 4)..<(start + 4 + n)]
        start += 4 + n
        let frame = try Frame.decode(payload: payload)
        if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
        return frame
    }
}
