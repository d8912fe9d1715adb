import CeleryProtocol

/// Python's `repr` of JSON values, for the `argsrepr`/`kwargsrepr` headers that Flower and
/// logs show (Celery truncates them to 1024 characters, and so does this).
enum PythonRepr {
    static let maxLength = 1024

    /// `(2, 3)`, `(1,)`, `()`: args as Python's tuple repr.
    static func args(_ args: [JSON]) -> String {
        let inner = args.map(repr).joined(separator: ", ")
        return truncate("(" + inner + (args.count == 1 ? ",)" : ")"))
    }

    /// `{'a': 1}`.
    static func kwargs(_ kwargs: JSONObject) -> String { truncate(repr(.object(kwargs))) }

    static func repr(_ value: JSON) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double: return JSONWriter.string(value)
        case .string(let s): return string(s)
        case .array(let items): return "[" + items.map(repr).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.entries.map { string($0.key) + ": " + repr($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// A str's repr: single quotes unless the text has one and no double quote.
    static func string(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == quote { out += "\\" + String(quote) } else if c.value < 0x20 || c.value == 0x7f {
                    let hex = String(c.value, radix: 16)
                    out += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else { out.unicodeScalars.append(c) }
            }
        }
        out.append(quote)
        return out
    }

    /// An exception as Python reprs it: `ZeroDivisionError('division by zero')`.
    static func exception(type: String, messageArgs: [JSON]) -> String {
        type + "(" + messageArgs.map(repr).joined(separator: ", ") + ")"
    }

    static func truncate(_ s: String) -> String {
        s.count > maxLength ? String(s.prefix(maxLength - 3)) + "..." : s
    }
}
