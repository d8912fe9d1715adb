/// Reads the YAML that configuration files and plugin manifests are written in, without
/// Foundation (so the host does not load Foundation and ICU, ~6 MB resident, for two small files).
///
/// What it reads: one document (an optional `---` first, an optional `...` last); block mappings
/// and sequences by indentation (a sequence may sit at its key's indentation); flow mappings and
/// sequences (`{ a: 1 }`, `[a, b]`, over several lines too); plain scalars (over several lines,
/// folded), single- and double-quoted scalars with their escapes, literal (`|`) and folded (`>`)
/// block scalars with chomping and indentation indicators; comments.
///
/// What it refuses, with the line: anchors, aliases, tags, complex (`?`) keys, directives,
/// several documents, tabs in indentation, and anything malformed. The error names what is not
/// supported rather than reading it differently. Duplicate keys are kept, in order, for the
/// caller to refuse with its own words (`YAMLNode.firstDuplicateKey`).
public struct YAMLReader {
    /// Why a text is not read: the line (1-based) and the problem.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let line: Int
        public let problem: String
        public var description: String { "line \(line): \(problem)" }
    }

    private let bytes: [UInt8]
    private var i = 0
    /// The current line (1-based) and the offset where it starts.
    private var line = 1
    private var lineStart = 0
    /// Collections open around the cursor: at most `maxDepth`, so no text can exhaust the stack.
    private var depth = 0
    public static let maxDepth = 64

    /// The document's root node; nil for a document with no content (empty, or comments only).
    public static func read(_ text: String) throws(Error) -> YAMLNode? {
        var reader = YAMLReader(bytes: Array(text.utf8))
        return try reader.document()
    }

    private init(bytes: [UInt8]) {
        // A byte order mark is allowed at the start; CRLF line ends read as LF.
        var text = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        if text.contains(UInt8(ascii: "\r")) {
            var normalized: [UInt8] = []
            normalized.reserveCapacity(text.count)
            for (index, c) in text.enumerated() where !(c == UInt8(ascii: "\r") && index + 1 < text.count && text[index + 1] == UInt8(ascii: "\n")) {
                normalized.append(c)
            }
            text = normalized
        }
        self.bytes = text
    }

    // MARK: Document

    private mutating func document() throws(Error) -> YAMLNode? {
        try nextContent()
        if atEnd { return nil }
        if byte == UInt8(ascii: "%") { throw fail("directives (%YAML, %TAG) are not supported") }
        var root: YAMLNode?
        if atMarker("---") {
            i += 3
            skipInlineSpace()
            if !atLineEnd {
                // `--- value` on the marker's line.
                root = try inlineValue(parentIndent: -1)
            }
        }
        if root == nil {
            try nextContent()
            if atEnd || atMarker("...") || atMarker("---") {
                root = nil
            } else {
                root = try block(parentIndent: -1, emptyLine: line)
            }
        }
        try nextContent()
        if atMarker("...") {
            i += 3
            try nextContent()
        }
        if atMarker("---") { throw fail("several documents in one file are not supported") }
        if !atEnd { throw fail("unexpected content (check the indentation)") }
        return root
    }

    // MARK: Block structure

    /// The node that starts on the next content line, which must be indented more than
    /// `parentIndent`; an empty (null) scalar when there is none.
    private mutating func block(parentIndent: Int, emptyLine: Int) throws(Error) -> YAMLNode {
        try nextContent()
        if atEnd || column <= parentIndent || atDocumentMarker { return .scalar(YAMLScalar("", line: emptyLine)) }
        let indent = column
        if atSequenceEntry { return try sequence(indent: indent) }
        if try atMappingKey() { return try mapping(indent: indent) }
        return try inlineValue(parentIndent: parentIndent)
    }

    private mutating func sequence(indent: Int) throws(Error) -> YAMLNode {
        let startLine = line
        try enter()
        defer { depth -= 1 }
        var items: [YAMLNode] = []
        while true {
            i += 1  // "-"
            skipInlineSpace()
            if atLineEnd {
                items.append(try block(parentIndent: indent, emptyLine: line))
            } else {
                let itemIndent = column
                if atSequenceEntry {
                    items.append(try sequence(indent: itemIndent))
                } else if try atMappingKey() {
                    items.append(try mapping(indent: itemIndent))
                } else {
                    items.append(try inlineValue(parentIndent: indent))
                }
            }
            try nextContent()
            if atEnd || column < indent || atDocumentMarker { break }
            if column > indent { throw fail("bad indentation: expected a `-` entry at column \(indent + 1)") }
            guard atSequenceEntry else { break }  // a key of the mapping this sequence is the value of
        }
        return .sequence(items, line: startLine)
    }

    private mutating func mapping(indent: Int) throws(Error) -> YAMLNode {
        let startLine = line
        try enter()
        defer { depth -= 1 }
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        while true {
            guard try atMappingKey() else {
                if atSequenceEntry { throw fail("a `-` entry where a key of the mapping was expected") }
                throw fail("expected `key: value` (a mapping entry)")
            }
            let key = try mappingKey()
            // The key is followed by ":", checked by atMappingKey.
            i += 1
            skipInlineSpace()
            let value: YAMLNode
            if atLineEnd {
                try nextContent()
                if !atEnd, column == indent, atSequenceEntry, !atDocumentMarker {
                    // A sequence may sit at its key's indentation.
                    value = try sequence(indent: indent)
                } else {
                    value = try block(parentIndent: indent, emptyLine: key.line)
                }
            } else {
                if atSequenceEntry { throw fail("a block sequence cannot start on its key's line (put it on the next line)") }
                if try atMappingKey() { throw fail("a mapping cannot start on its key's line (use `{ }` or the next line)") }
                value = try inlineValue(parentIndent: indent)
            }
            entries.append((.scalar(key), value))
            try nextContent()
            if atEnd || column < indent || atDocumentMarker { break }
            if column > indent { throw fail("bad indentation: expected a key at column \(indent + 1)") }
        }
        return .mapping(entries, line: startLine)
    }

    /// A block mapping's key (plain or quoted), leaving the cursor on its ":".
    private mutating func mappingKey() throws(Error) -> YAMLScalar {
        let keyLine = line
        switch byte {
        case UInt8(ascii: "\""):
            let text = try quoted()
            skipInlineSpace()
            return YAMLScalar(text, style: .doubleQuoted, line: keyLine)
        case UInt8(ascii: "'"):
            let text = try quoted()
            skipInlineSpace()
            return YAMLScalar(text, style: .singleQuoted, line: keyLine)
        default:
            let start = i
            while !atLineEnd, !(byte == UInt8(ascii: ":") && isBlankOrEnd(at: i + 1)) { i += 1 }
            var end = i
            while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            return YAMLScalar(String(decoding: bytes[start..<end], as: UTF8.self), line: keyLine)
        }
    }

    /// Whether a block mapping key (`key:` then a space or the line's end) starts here.
    private mutating func atMappingKey() throws(Error) -> Bool {
        guard !atLineEnd else { return false }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            let saved = (i, line, lineStart)
            defer { (i, line, lineStart) = saved }
            _ = try quoted()
            skipInlineSpace()
            return !atEnd && byte == UInt8(ascii: ":") && isBlankOrEnd(at: i + 1)
        case UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "#"):
            return false
        case UInt8(ascii: "?") where isBlankOrEnd(at: i + 1):
            throw fail("complex mapping keys (`? `) are not supported")
        default:
            var j = i
            while j < bytes.count, bytes[j] != UInt8(ascii: "\n") {
                if bytes[j] == UInt8(ascii: "#"), j > i, bytes[j - 1] == UInt8(ascii: " ") || bytes[j - 1] == UInt8(ascii: "\t") { return false }
                if bytes[j] == UInt8(ascii: ":"), isBlankOrEnd(at: j + 1) { return true }
                j += 1
            }
            return false
        }
    }

    // MARK: Values on a line

    /// A value that starts on the current line: a flow collection, a quoted, block or plain
    /// scalar. `parentIndent`: continuation lines must be indented more than this.
    private mutating func inlineValue(parentIndent: Int) throws(Error) -> YAMLNode {
        let startLine = line
        let node: YAMLNode
        switch byte {
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            node = try flow()
        case UInt8(ascii: "\""):
            node = .scalar(YAMLScalar(try quoted(), style: .doubleQuoted, line: startLine))
        case UInt8(ascii: "'"):
            node = .scalar(YAMLScalar(try quoted(), style: .singleQuoted, line: startLine))
        case UInt8(ascii: "|"), UInt8(ascii: ">"):
            return try blockScalar(parentIndent: parentIndent)
        default:
            try refuseUnsupported()
            return .scalar(YAMLScalar(try plain(parentIndent: parentIndent), line: startLine))
        }
        skipInlineSpace()
        if !atLineEnd { throw fail("unexpected text after the value") }
        return node
    }

    /// Anchors, aliases, tags and reserved indicators: refused, not misread as text.
    private func refuseUnsupported() throws(Error) {
        switch byte {
        case UInt8(ascii: "&"): throw fail("anchors (`&name`) are not supported")
        case UInt8(ascii: "*"): throw fail("aliases (`*name`) are not supported")
        case UInt8(ascii: "!"): throw fail("tags (`!tag`) are not supported")
        case UInt8(ascii: "@"), UInt8(ascii: "`"): throw fail("a plain value cannot start with `\(Character(UnicodeScalar(byte)))` (quote it)")
        case UInt8(ascii: "%"): throw fail("a plain value cannot start with `%` (quote it)")
        case UInt8(ascii: "-") where isBlankOrEnd(at: i + 1): throw fail("a block sequence cannot start here")
        case UInt8(ascii: "?") where isBlankOrEnd(at: i + 1): throw fail("complex mapping keys (`? `) are not supported")
        default: return
        }
    }

    /// A plain scalar in block context: the rest of the line (up to a comment), then the lines
    /// indented more than `parentIndent`, folded into one line.
    private mutating func plain(parentIndent: Int) throws(Error) -> String {
        var lines: [String] = []
        while true {
            let start = i
            while !atLineEnd {
                if byte == UInt8(ascii: ":"), isBlankOrEnd(at: i + 1) { throw fail("`: ` inside a plain value (quote the value)") }
                i += 1
            }
            var end = i
            while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            lines.append(String(decoding: bytes[start..<end], as: UTF8.self))
            if !atEnd, byte == UInt8(ascii: "#") { return fold(lines) }  // a comment ends the value
            // A continuation line: more indented than the parent, and not a comment.
            let saved = (i, line, lineStart)
            var blankLines = 0
            while true {
                skipRestOfLine()
                guard !atEnd else { break }
                skipInlineSpace()
                if atEnd || byte == UInt8(ascii: "\n") { blankLines += 1; continue }
                break
            }
            if atEnd || column <= parentIndent || byte == UInt8(ascii: "#") || atDocumentMarker {
                (i, line, lineStart) = saved
                return fold(lines)
            }
            if blankLines > 0 { lines.append(contentsOf: Array(repeating: "\n", count: blankLines)) }
        }
    }

    /// Joins the lines of a multi-line plain or quoted scalar: a line break is a space, and each
    /// empty line a line break.
    private func fold(_ lines: [String]) -> String {
        var text = ""
        var previousWasBreak = true
        for (index, part) in lines.enumerated() {
            if part == "\n" {
                text += "\n"
                previousWasBreak = true
                continue
            }
            if index > 0, !previousWasBreak { text += " " }
            text += part
            previousWasBreak = false
        }
        return text
    }

    /// A single- or double-quoted scalar, from its opening quote: `''` is a quote in single
    /// quotes, `\` starts an escape in double quotes, and line breaks fold in both.
    private mutating func quoted() throws(Error) -> String {
        let startLine = line
        let quote = byte
        let double = quote == UInt8(ascii: "\"")
        i += 1
        var out: [UInt8] = []
        while true {
            guard !atEnd else { throw Error(line: startLine, problem: "a \(double ? "double" : "single")-quoted value is not closed") }
            let c = byte
            if c == quote {
                if !double, i + 1 < bytes.count, bytes[i + 1] == quote {
                    out.append(c)
                    i += 2
                    continue
                }
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if double, c == UInt8(ascii: "\\") {
                i += 1
                guard !atEnd else { throw Error(line: startLine, problem: "a double-quoted value is not closed") }
                try appendEscape(to: &out)
            } else if c == UInt8(ascii: "\n") {
                try foldQuotedLineBreak(into: &out)
            } else {
                out.append(c)
                i += 1
            }
        }
    }

    /// The escape after a `\` in a double-quoted scalar.
    private mutating func appendEscape(to out: inout [UInt8]) throws(Error) {
        let e = byte
        i += 1
        switch e {
        case UInt8(ascii: "0"): out.append(0)
        case UInt8(ascii: "a"): out.append(7)
        case UInt8(ascii: "b"): out.append(8)
        case UInt8(ascii: "t"), 9: out.append(9)
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "v"): out.append(11)
        case UInt8(ascii: "f"): out.append(12)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "e"): out.append(27)
        case UInt8(ascii: " "), UInt8(ascii: "\""), UInt8(ascii: "/"), UInt8(ascii: "\\"): out.append(e)
        case UInt8(ascii: "N"): out.append(contentsOf: [0xC2, 0x85])
        case UInt8(ascii: "_"): out.append(contentsOf: [0xC2, 0xA0])
        case UInt8(ascii: "L"): out.append(contentsOf: [0xE2, 0x80, 0xA8])
        case UInt8(ascii: "P"): out.append(contentsOf: [0xE2, 0x80, 0xA9])
        case UInt8(ascii: "x"): try appendEscaped(digits: 2, to: &out)
        case UInt8(ascii: "u"): try appendEscaped(digits: 4, to: &out)
        case UInt8(ascii: "U"): try appendEscaped(digits: 8, to: &out)
        case UInt8(ascii: "\n"):
            // An escaped line break: joined without a space (the cursor is past it already).
            line += 1
            lineStart = i
            skipInlineSpace()
        default: throw fail("unknown escape `\\\(Character(UnicodeScalar(e)))` in a double-quoted value")
        }
    }

    private mutating func appendEscaped(digits: Int, to out: inout [UInt8]) throws(Error) {
        guard i + digits <= bytes.count, let value = UInt32(String(decoding: bytes[i..<(i + digits)], as: UTF8.self), radix: 16),
              let scalar = UnicodeScalar(value) else {
            throw fail("a `\\x`, `\\u` or `\\U` escape needs \(digits) hexadecimal digits of a valid character")
        }
        i += digits
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
    }

    /// A line break inside a quoted scalar: trailing spaces dropped, a space for one break, a
    /// line break for each empty line, the next line's leading spaces dropped.
    private mutating func foldQuotedLineBreak(into out: inout [UInt8]) throws(Error) {
        while let last = out.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { out.removeLast() }
        newLine()
        var breaks = 0
        while true {
            skipInlineSpace()
            if !atEnd, byte == UInt8(ascii: "\n") {
                breaks += 1
                newLine()
                continue
            }
            break
        }
        if atDocumentMarker { throw fail("a document marker inside a quoted value") }
        if breaks == 0 { out.append(UInt8(ascii: " ")) } else { out.append(contentsOf: Array(repeating: UInt8(ascii: "\n"), count: breaks)) }
    }

    /// A literal (`|`) or folded (`>`) block scalar: the lines indented more than `parentIndent`.
    private mutating func blockScalar(parentIndent: Int) throws(Error) -> YAMLNode {
        let startLine = line
        let folded = byte == UInt8(ascii: ">")
        i += 1
        var chomp = 0  // -1 strip, 0 clip, 1 keep
        var explicitIndent: Int?
        for _ in 0..<2 where !atEnd {
            if byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                chomp = byte == UInt8(ascii: "-") ? -1 : 1
                i += 1
            } else if byte >= UInt8(ascii: "1"), byte <= UInt8(ascii: "9") {
                explicitIndent = Int(byte - UInt8(ascii: "0"))
                i += 1
            }
        }
        skipInlineSpace()
        if !atLineEnd { throw fail("unexpected text after a block scalar's `\(folded ? ">" : "|")` indicator") }
        skipRestOfLine()
        // The content lines, with their indentation.
        var lines: [(indent: Int, text: String)] = []
        var contentIndent = explicitIndent.map { max(0, parentIndent) + $0 }
        while !atEnd {
            let start = i
            var spaces = 0
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { spaces += 1; i += 1 }
            if atEnd || byte == UInt8(ascii: "\n") {
                lines.append((spaces, ""))
                if !atEnd { newLine() }
                continue
            }
            if contentIndent == nil {
                guard spaces > parentIndent else { i = start; break }
                contentIndent = spaces
            }
            guard spaces >= contentIndent!, !(spaces == 0 && atDocumentMarker) else { i = start; break }
            let textStart = start + contentIndent!
            while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
            lines.append((spaces, String(decoding: bytes[textStart..<i], as: UTF8.self)))
            if !atEnd { newLine() }
        }
        // Blank lines after the content belong to the chomping, not to the next node.
        var trailing = 0
        while let last = lines.last, last.text.isEmpty { lines.removeLast(); trailing += 1 }
        var text = ""
        let base = contentIndent ?? 0
        for (index, entry) in lines.enumerated() {
            if index > 0 {
                let previous = lines[index - 1]
                if !folded || previous.indent > base || entry.indent > base && !entry.text.isEmpty {
                    text += "\n"  // literal, or around a more-indented line of a folded scalar
                } else if previous.text.isEmpty {
                    text += "\n"  // an empty line
                } else if !entry.text.isEmpty {
                    text += " "  // two lines of text: folded
                }  // a line break before an empty line: folded away
            }
            text += entry.text
        }
        switch chomp {
        case -1: break
        case 1: if !lines.isEmpty || trailing > 0 { text += String(repeating: "\n", count: (lines.isEmpty ? 0 : 1) + trailing) }
        default: if !lines.isEmpty { text += "\n" }
        }
        return .scalar(YAMLScalar(text, style: folded ? .folded : .literal, line: startLine))
    }

    // MARK: Flow collections

    /// `[ ... ]` or `{ ... }`, possibly over several lines.
    private mutating func flow() throws(Error) -> YAMLNode {
        let startLine = line
        try enter()
        defer { depth -= 1 }
        let isMapping = byte == UInt8(ascii: "{")
        let close = isMapping ? UInt8(ascii: "}") : UInt8(ascii: "]")
        i += 1
        var items: [YAMLNode] = []
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        while true {
            try skipFlowSpace(startLine: startLine)
            if byte == close { i += 1; break }
            let first = try flowNode(startLine: startLine)
            try skipFlowSpace(startLine: startLine)
            var value: YAMLNode?
            if byte == UInt8(ascii: ":") {
                i += 1
                try skipFlowSpace(startLine: startLine)
                if byte == UInt8(ascii: ",") || byte == close {
                    value = .scalar(YAMLScalar("", line: line))
                } else {
                    value = try flowNode(startLine: startLine)
                }
                try skipFlowSpace(startLine: startLine)
            }
            if isMapping || value != nil {
                guard let key = first.scalar else { throw Error(line: first.line, problem: "a collection as a mapping key is not supported") }
                let pair = (key: first, value: value ?? .scalar(YAMLScalar("", line: key.line)))
                if isMapping {
                    entries.append(pair)
                } else {
                    items.append(.mapping([pair], line: key.line))  // `[a: 1]`: a one-pair mapping
                }
            } else {
                items.append(first)
            }
            if byte == UInt8(ascii: ",") { i += 1; continue }
            if byte == close { i += 1; break }
            throw fail("expected `,` or `\(Character(UnicodeScalar(close)))` in a flow \(isMapping ? "mapping" : "sequence")")
        }
        return isMapping ? .mapping(entries, line: startLine) : .sequence(items, line: startLine)
    }

    private mutating func flowNode(startLine: Int) throws(Error) -> YAMLNode {
        let nodeLine = line
        switch byte {
        case UInt8(ascii: "["), UInt8(ascii: "{"): return try flow()
        case UInt8(ascii: "\""): return .scalar(YAMLScalar(try quoted(), style: .doubleQuoted, line: nodeLine))
        case UInt8(ascii: "'"): return .scalar(YAMLScalar(try quoted(), style: .singleQuoted, line: nodeLine))
        case UInt8(ascii: "]"), UInt8(ascii: "}"): throw fail("unexpected `\(Character(UnicodeScalar(byte)))` in a flow collection")
        case UInt8(ascii: ","): throw fail("an empty entry in a flow collection")
        default:
            try refuseUnsupported()
            // A plain scalar in flow context ends at `,`, `[`, `]`, `{`, `}`, at `: ` (or `:` before
            // one of those), at a comment; it may go on over lines (folded).
            var out: [UInt8] = []
            var pendingSpace = false
            while !atEnd {
                let c = byte
                if c == UInt8(ascii: ",") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "{") || c == UInt8(ascii: "}") { break }
                if c == UInt8(ascii: ":"), isBlankOrEnd(at: i + 1) || isFlowIndicator(at: i + 1) { break }
                if c == UInt8(ascii: "#"), pendingSpace || out.isEmpty { break }
                if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") {
                    if c == UInt8(ascii: "\n") { newLine() } else { i += 1 }
                    pendingSpace = true
                    continue
                }
                if pendingSpace, !out.isEmpty { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                out.append(c)
                i += 1
            }
            guard !atEnd else { throw Error(line: startLine, problem: "a flow collection is not closed") }
            return .scalar(YAMLScalar(String(decoding: out, as: UTF8.self), line: nodeLine))
        }
    }

    /// Spaces, line breaks and comments inside a flow collection.
    private mutating func skipFlowSpace(startLine: Int) throws(Error) {
        while !atEnd {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): i += 1
            case UInt8(ascii: "\n"): newLine()
            case UInt8(ascii: "#"): while !atEnd, byte != UInt8(ascii: "\n") { i += 1 }
            default:
                if column == 0, atDocumentMarker { throw Error(line: startLine, problem: "a flow collection is not closed") }
                return
            }
        }
        throw Error(line: startLine, problem: "a flow collection is not closed")
    }

    private func isFlowIndicator(at j: Int) -> Bool {
        guard j < bytes.count else { return false }
        let c = bytes[j]
        return c == UInt8(ascii: ",") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "{") || c == UInt8(ascii: "}")
    }

    // MARK: Cursor

    private var atEnd: Bool { i >= bytes.count }
    private var byte: UInt8 { bytes[i] }
    private var column: Int { i - lineStart }

    /// At the end of the line's content: its end, the text's end, or a comment.
    private var atLineEnd: Bool {
        if atEnd || byte == UInt8(ascii: "\n") { return true }
        if byte == UInt8(ascii: "\r"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\n") { return true }
        return byte == UInt8(ascii: "#") && (i == lineStart || bytes[i - 1] == UInt8(ascii: " ") || bytes[i - 1] == UInt8(ascii: "\t"))
    }

    private func isBlankOrEnd(at j: Int) -> Bool {
        j >= bytes.count || bytes[j] == UInt8(ascii: " ") || bytes[j] == UInt8(ascii: "\t") || bytes[j] == UInt8(ascii: "\n")
            || bytes[j] == UInt8(ascii: "\r")
    }

    private var atSequenceEntry: Bool { !atEnd && byte == UInt8(ascii: "-") && isBlankOrEnd(at: i + 1) }

    /// `---` or `...` at the start of a line, followed by a blank or the end.
    private func atMarker(_ marker: String) -> Bool {
        let m = Array(marker.utf8)
        return column == 0 && i + 3 <= bytes.count && Array(bytes[i..<(i + 3)]) == m && isBlankOrEnd(at: i + 3)
    }

    private var atDocumentMarker: Bool { atMarker("---") || atMarker("...") }

    private mutating func newLine() {
        i += 1
        line += 1
        lineStart = i
    }

    private mutating func skipInlineSpace() {
        while !atEnd, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || (byte == UInt8(ascii: "\r") && isBlankOrEnd(at: i + 1)) { i += 1 }
    }

    /// To the start of the next line (past a comment).
    private mutating func skipRestOfLine() {
        while !atEnd, byte != UInt8(ascii: "\n") { i += 1 }
        if !atEnd { newLine() }
    }

    /// To the first content of the next line that has some (past blank and comment lines), or
    /// stays put when the cursor is already on content.
    private mutating func skipToContent() {
        if i > lineStart, !bytes[lineStart..<i].allSatisfy({ $0 == UInt8(ascii: " ") }) {
            // Mid-line: the rest of the line must be blank or a comment.
            skipInlineSpace()
            if !atLineEnd { return }
            skipRestOfLine()
        }
        while !atEnd {
            var j = i
            while j < bytes.count, bytes[j] == UInt8(ascii: " ") { j += 1 }
            var k = j
            while k < bytes.count, bytes[k] == UInt8(ascii: " ") || bytes[k] == UInt8(ascii: "\t") { k += 1 }
            if k >= bytes.count { i = k; return }
            if bytes[k] == UInt8(ascii: "\n") || bytes[k] == UInt8(ascii: "#") {
                i = j
                skipRestOfLine()
                continue
            }
            i = j
            return
        }
    }

    /// `skipToContent`, refusing a line indented with a tab.
    private mutating func nextContent() throws(Error) {
        skipToContent()
        if !atEnd, byte == UInt8(ascii: "\t") { throw fail("a tab in indentation (YAML indents with spaces)") }
    }

    private mutating func enter() throws(Error) {
        depth += 1
        if depth > Self.maxDepth { throw fail("collections nested more than \(Self.maxDepth) deep") }
    }

    private func fail(_ problem: String) -> Error { Error(line: line, problem: problem) }
}
