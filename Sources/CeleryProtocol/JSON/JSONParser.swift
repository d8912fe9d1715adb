/// A strict, bounded JSON parser over bytes.
///
/// Guarantees: never traps on any input; nesting deeper than `maxDepth` is an error rather than
/// a stack overflow; strings must be valid UTF-8 (invalid escapes and lone surrogates are
/// errors); a trailing non-space byte is an error. Accepts Python's `NaN`, `Infinity` and
/// `-Infinity`. Integers outside Int64 become doubles, as they would in most JSON readers.
public struct JSONParser {
    /// What went wrong and at which byte offset.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let message: String
        public let offset: Int
        public var description: String { "invalid JSON at byte \(offset): \(message)" }
    }

    /// The deepest nesting accepted.
    public static let defaultMaxDepth = 256

    /// Parses one JSON document.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(Error) -> JSON {
        try parse(Array(bytes), maxDepth: maxDepth)
    }

    /// Parses one JSON document held in an array, without copying it (the per-message path).
    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(Error) -> JSON {
        try bytes.withUnsafeBufferPointer { (buffer) throws(Error) -> JSON in
            var parser = Cursor(bytes: buffer, maxDepth: maxDepth)
            parser.skipSpace()
            let value = try parser.parseValue(depth: 0)
            parser.skipSpace()
            guard parser.index == buffer.count else { throw parser.error("unexpected data after the document") }
            return value
        }
    }

    /// Parses one JSON document from a string.
    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(Error) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    /// Finds the byte ranges of the elements of a top-level array without building values,
    /// validating the whole document. Used to hand `args` and `kwargs` to a plugin untouched.
    public static func topLevelElementRanges(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth) throws(Error) -> [Range<Int>] {
        var parser = Cursor(bytes: buffer, maxDepth: maxDepth)
        parser.skipSpace()
        guard parser.peek() == UInt8(ascii: "[") else { throw parser.error("expected an array") }
        parser.index += 1
        var ranges: [Range<Int>] = []
        parser.skipSpace()
        if parser.peek() == UInt8(ascii: "]") {
            parser.index += 1
        } else {
            while true {
                parser.skipSpace()
                let start = parser.index
                _ = try parser.parseValue(depth: 1)
                ranges.append(start..<parser.index)
                parser.skipSpace()
                guard let c = parser.next() else { throw parser.error("unterminated array") }
                if c == UInt8(ascii: "]") { break }
                guard c == UInt8(ascii: ",") else { throw parser.error("expected ',' or ']'") }
            }
        }
        parser.skipSpace()
        guard parser.index == buffer.count else { throw parser.error("unexpected data after the document") }
        return ranges
    }

    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ message: String) -> Error { Error(message: message, offset: index) }

        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func next() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(Error) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("truncated literal") }
            let p = literal.utf8Start
            for i in 0..<count where bytes[index + i] != p[i] { throw error("invalid literal") }
            index += count
        }

        mutating func parseValue(depth: Int) throws(Error) -> JSON {
            guard let c = peek() else { throw error("unexpected end of input") }
            switch c {
            case UInt8(ascii: "{"):
                guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)") }
                return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)") }
                return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "N"): try expectLiteral("NaN"); return .double(.nan)
            case UInt8(ascii: "I"): try expectLiteral("Infinity"); return .double(.infinity)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try parseNumber()
            default:
                throw error("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws(Error) -> JSON {
            index += 1
            var entries: [(key: String, value: JSON)] = []
            skipSpace()
            if peek() == UInt8(ascii: "}") { index += 1; return .object(JSONObject(entries)) }
            // Room for a message's headers (19 keys in protocol 2) at once, instead of growing
            // the array five times: objects on the hot path are small and short-lived.
            entries.reserveCapacity(24)
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard next() == UInt8(ascii: ":") else { throw error("expected ':'") }
                skipSpace()
                let value = try parseValue(depth: depth)
                entries.append((key: key, value: value))
                skipSpace()
                guard let c = next() else { throw error("unterminated object") }
                if c == UInt8(ascii: "}") { return .object(JSONObject(Self.lastValueWins(entries))) }
                guard c == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
            }
        }

        /// A key given twice keeps its last value, as Python's `json.loads` does (at the place
        /// of its first occurrence).
        static func lastValueWins(_ entries: [(key: String, value: JSON)]) -> [(key: String, value: JSON)] {
            guard entries.count > 1 else { return entries }
            var duplicated = false
            if entries.count <= 32 {
                // Envelopes and headers (19 keys in protocol 2) are small objects: comparing keys
                // pairwise, lengths first, costs less than hashing every one of them (this runs
                // for every object of every message).
                // The lengths sit in scratch memory on the stack, not in an array of their own.
                duplicated = entries.withUnsafeBufferPointer { entries in
                    withUnsafeTemporaryAllocation(of: Int.self, capacity: entries.count) { lengths in
                        for i in entries.indices {
                            let length = entries[i].key.utf8.count
                            lengths[i] = length
                            for j in 0..<i where lengths[j] == length && entries[j].key == entries[i].key { return true }
                        }
                        return false
                    }
                }
            } else {
                var seen = Set<String>(minimumCapacity: entries.count)
                for entry in entries where !seen.insert(entry.key).inserted { duplicated = true; break }
            }
            guard duplicated else { return entries }
            var last: [String: JSON] = [:]
            for entry in entries { last[entry.key] = entry.value }
            var emitted = Set<String>()
            return entries.compactMap { entry in
                emitted.insert(entry.key).inserted ? (key: entry.key, value: last[entry.key]!) : nil
            }
        }

        mutating func parseArray(depth: Int) throws(Error) -> JSON {
            index += 1
            var items: [JSON] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth))
                skipSpace()
                guard let c = next() else { throw error("unterminated array") }
                if c == UInt8(ascii: "]") { return .array(items) }
                guard c == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            }
        }

        mutating func parseNumber() throws(Error) -> JSON {
            let start = index
            if peek() == UInt8(ascii: "-") {
                index += 1
                if peek() == UInt8(ascii: "I") { try expectLiteral("Infinity"); return .double(-.infinity) }
            }
            var isFloat = false
            guard let first = peek(), first >= 0x30, first <= 0x39 else { throw error("invalid number") }
            if first == 0x30 {
                index += 1
            } else {
                while let c = peek(), c >= 0x30, c <= 0x39 { index += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                isFloat = true
                index += 1
                guard let c = peek(), c >= 0x30, c <= 0x39 else { throw error("invalid fraction") }
                while let c = peek(), c >= 0x30, c <= 0x39 { index += 1 }
            }
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                isFloat = true
                index += 1
                if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { index += 1 }
                guard let c = peek(), c >= 0x30, c <= 0x39 else { throw error("invalid exponent") }
                while let c = peek(), c >= 0x30, c <= 0x39 { index += 1 }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if !isFloat, let value = Int64(text) { return .int(value) }
            if !isFloat, let value = UInt64(text) { return .uint(value) }
            guard let value = Double(text) else { throw error("invalid number") }
            return .double(value)
        }

        mutating func parseHex4() throws(Error) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                index += 1
                let digit: UInt32
                switch c {
                case 0x30...0x39: digit = UInt32(c - 0x30)
                case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
            }
            return value
        }

        /// Moves past whole 8-byte words of printable ASCII other than `"` and `\`, stopping at
        /// the first word that holds another byte, or where fewer than 8 bytes are left. A
        /// string's bytes are looked at one by one only from there.
        @inline(__always)
        mutating func skipPlainASCII() {
            guard let base = bytes.baseAddress else { return }
            let raw = UnsafeRawPointer(base)
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            while index &+ 8 <= bytes.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let quotes = word ^ (ones &* 0x22), backslashes = word ^ (ones &* 0x5C)
                // A zero byte in `quotes` / `backslashes`, a byte below 0x20, a byte from 0x80:
                // each test is exact about whether the word has one (the usual SWAR tests).
                let special = ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes) | ((word &- ones &* 0x20) & ~word) | word
                if special & highs != 0 { return }
                index &+= 8
            }
        }

        /// At a string without escapes whose bytes are all printable ASCII: moves past it and returns
        /// the range of its text. Anything else returns `nil` (the cursor is then of no further use).
        mutating func plainASCIIString() -> Range<Int>? {
            guard next() == UInt8(ascii: "\"") else { return nil }
            let start = index
            skipPlainASCII()
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                guard c >= 0x20, c < 0x80, c != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            return nil
        }

        mutating func parseString() throws(Error) -> String {
            index += 1
            let start = index
            // Fast path: no escapes, plain UTF-8 up to the closing quote; all-ASCII text (the
            // usual case) needs no UTF-8 validation.
            var high: UInt8 = 0
            skipPlainASCII()
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    if high < 0x80 { return String(decoding: slice, as: UTF8.self) }
                    guard let s = String(validUTF8: slice) else {
                        throw Error(message: "string is not valid UTF-8", offset: start)
                    }
                    return s
                }
                high |= c
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { throw error("control character in string") }
                index += 1
            }
            var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while true {
                guard let c = next() else { throw error("unterminated string") }
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validUTF8: scalars) else {
                        throw Error(message: "string is not valid UTF-8", offset: start)
                    }
                    return s
                case UInt8(ascii: "\\"):
                    guard let e = next() else { throw error("unterminated escape") }
                    switch e {
                    case UInt8(ascii: "\""): scalars.append(0x22)
                    case UInt8(ascii: "\\"): scalars.append(0x5C)
                    case UInt8(ascii: "/"): scalars.append(0x2F)
                    case UInt8(ascii: "b"): scalars.append(0x08)
                    case UInt8(ascii: "f"): scalars.append(0x0C)
                    case UInt8(ascii: "n"): scalars.append(0x0A)
                    case UInt8(ascii: "r"): scalars.append(0x0D)
                    case UInt8(ascii: "t"): scalars.append(0x09)
                    case UInt8(ascii: "u"):
                        var code = try parseHex4()
                        if code >= 0xD800 && code < 0xDC00 {
                            guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                                throw error("lone high surrogate")
                            }
                            index += 2
                            let low = try parseHex4()
                            guard low >= 0xDC00 && low < 0xE000 else { throw error("invalid low surrogate") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else if code >= 0xDC00 && code < 0xE000 {
                            throw error("lone low surrogate")
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("invalid code point") }
                        scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default:
                        throw error("invalid escape")
                    }
                default:
                    if c < 0x20 { throw error("control character in string") }
                    scalars.append(c)
                }
            }
        }
    }
}
