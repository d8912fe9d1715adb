import CeleryProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format`: human-readable lines (the default) or one JSON object per line for log
/// pipelines. Either way a line about a task names it: text as Celery does (`name[id]` in the
/// message), JSON with `task_name` and `task_id` fields too. Neither ever holds a secret: URLs
/// are logged masked at their source.
enum LogFormat: String {
    case text, json

    init(parsing text: String) throws(FnHostError) {
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw FnHostError("unknown log format '\(text)': text or json")
        }
        self = format
    }
}

/// Writes log lines to standard error in a `LogFormat`, one `write` per line.
struct FormattedLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        emit(level: event.level, message: event.message, metadata: event.metadata, source: event.source)
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        emit(level: level, message: message, metadata: explicit, source: source)
    }

    private func emit(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String) {
        var all = metadata
        if let explicit { all.merge(explicit) { _, new in new } }
        let text: String
        switch format {
        case .text:
            // The task is already in the message as name[id]; other metadata goes before it.
            let extra = all.filter { $0.key != "task_name" && $0.key != "task_id" }.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            text = "\(Self.timestamp()) \(level) \(label):\(extra.isEmpty ? "" : " " + extra) [\(source)] \(message)\n"
        case .json:
            var object: JSONObject = [
                "timestamp": .string(CeleryTime.isoformat(CeleryTime.now())), "level": .string(level.rawValue),
                "logger": .string(label), "source": .string(source), "message": .string(message.description),
            ]
            for (key, value) in all.sorted(by: { $0.key < $1.key }) { object[key] = Self.json(value) }
            text = JSONWriter.string(.object(object)) + "\n"
        }
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { writeAll($0) }
    }

    private func writeAll(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        var done = 0
        while done < buffer.count {
            let n = write(2, buffer.baseAddress! + done, buffer.count - done)
            if n <= 0 { break }
            done += n
        }
        return done
    }

    static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let d): return .object(JSONObject(d.sorted { $0.key < $1.key }.map { (key: $0.key, value: json($0.value)) }))
        }
    }

    /// Local time as StreamLogHandler writes it: 2026-11-25T04:26:04+0000.
    static func timestamp() -> String {
        var now = time(nil)
        var tm = tm()
        localtime_r(&now, &tm)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &tm)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
