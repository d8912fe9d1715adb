import CeleryProtocol

/// Python's `repr()` of JSON values and exceptions, as Celery puts them in events
/// (`task-succeeded`'s `result`, `task-failed`'s `exception`).
public enum PythonRepr {
    public static func of(_ value: JSON) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double(let d):
            if d.isNaN { return "nan" }
            if d.isInfinite { return d > 0 ? "inf" : "-inf" }
            return JSONWriter.string(.double(d))
        case .string(let s): return string(s)
        case .array(let items): return "[" + items.map(of).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.entries.map { string($0.key) + ": " + of($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// A Python string literal: single quotes unless the text has one and no double quote.
    public static func string(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case quote: out += "\\" + String(c)
            default: out.append(c)
            }
        }
        out.append(quote)
        return out
    }

    /// `TypeName('message')`.
    public static func exception(_ e: TaskException) -> String {
        "\(e.type)(\(string(e.message)))"
    }

    /// Python's repr of a JSON result given as bytes (invalid JSON shown as a string).
    public static func result(_ json: [UInt8]) -> String {
        (try? JSONParser.parse(json)).map(of) ?? string(String(decoding: json, as: UTF8.self))
    }
}
