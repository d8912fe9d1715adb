import CeleryProtocol

/// One node of a YAML document, with the line it starts on (1-based), for error messages.
///
/// Mappings keep their keys in the order written.
public indirect enum YAMLNode: Sendable, Equatable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], line: Int)
    case mapping([(key: YAMLNode, value: YAMLNode)], line: Int)

    public static func == (a: YAMLNode, b: YAMLNode) -> Bool {
        switch (a, b) {
        case (.scalar(let x), .scalar(let y)): return x == y
        case (.sequence(let x, let l), .sequence(let y, let m)): return x == y && l == m
        case (.mapping(let x, let l), .mapping(let y, let m)):
            return l == m && x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The line the node starts on (1-based).
    public var line: Int {
        switch self {
        case .scalar(let s): s.line
        case .sequence(_, let line), .mapping(_, let line): line
        }
    }

    /// The scalar, or nil for a collection.
    public var scalar: YAMLScalar? {
        if case .scalar(let s) = self { return s }
        return nil
    }

    /// The first key that appears twice in one mapping, here or in any nested collection (in
    /// the order written), or nil.
    public var firstDuplicateKey: YAMLScalar? {
        switch self {
        case .scalar: return nil
        case .sequence(let items, _): return items.lazy.compactMap(\.firstDuplicateKey).first
        case .mapping(let entries, _):
            var seen = Set<String>()
            for (key, value) in entries {
                if let k = key.scalar, !seen.insert(k.text).inserted { return k }
                if let nested = value.firstDuplicateKey { return nested }
            }
            return nil
        }
    }

    /// The value as JSON, each scalar by its resolved type (`true` a bool, `3` an int, `"3"` a
    /// string). A mapping's keys are their scalars' text; a collection as a key is refused by
    /// the reader, so it does not reach here.
    public var json: JSON {
        switch self {
        case .scalar(let s): s.json
        case .sequence(let items, _): .array(items.map(\.json))
        case .mapping(let entries, _): .object(JSONObject(entries.map { (key: $0.key.scalar?.text ?? "", value: $0.value.json) }))
        }
    }
}

/// A scalar as written: its text (quotes and escapes resolved, lines folded) and whether it was
/// plain, which decides its type (only plain scalars are numbers, booleans or null).
public struct YAMLScalar: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public var text: String
    public var style: Style
    public var line: Int

    public init(_ text: String, style: Style = .plain, line: Int) {
        self.text = text
        self.style = style
        self.line = line
    }
}
