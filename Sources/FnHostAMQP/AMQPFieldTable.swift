import CeleryProtocol

/// The AMQP 0-9-1 field table codec (RabbitMQ's dialect, as py-amqp writes it): a Celery
/// message's headers table, and queue arguments, to and from JSON.
///
/// Encoding follows py-amqp: null `V`, bool `t`, integers `I` (32-bit) or `l` (64-bit), floats
/// `d`, strings `S`, lists `A`, dicts `F`. Decoding accepts every RabbitMQ field type; timestamps
/// become integers (epoch seconds), byte arrays and decimals strings and floats.
public enum AMQPFieldTable {
    /// Why a table could not be encoded or decoded.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// The encoded table, its 32-bit length prefix included.
    public static func encode(_ table: JSONObject) throws(Error) -> [UInt8] {
        var out: [UInt8] = []
        try writeTable(table, into: &out)
        return out
    }

    /// Decodes a table (length prefix included) from the start of `bytes`.
    public static func decode(_ bytes: [UInt8]) throws(Error) -> JSONObject {
        var reader = Reader(bytes: bytes)
        return try reader.table(depth: 0)
    }

    // MARK: Encoding

    private static func writeTable(_ table: JSONObject, into out: inout [UInt8]) throws(Error) {
        let start = out.count
        out += [0, 0, 0, 0]
        for (key, value) in table.entries {
            let k = Array(key.utf8)
            guard k.count <= 255 else { throw Error(description: "header name longer than 255 bytes: \(key.prefix(40))...") }
            out.append(UInt8(k.count))
            out += k
            try writeValue(value, into: &out)
        }
        putLength(out.count - start - 4, at: start, in: &out)
    }

    private static func writeValue(_ value: JSON, into out: inout [UInt8]) throws(Error) {
        switch value {
        case .null:
            out.append(UInt8(ascii: "V"))
        case .bool(let b):
            out.append(UInt8(ascii: "t"))
            out.append(b ? 1 : 0)
        case .int(let i):
            if i >= Int64(Int32.min) && i <= Int64(Int32.max) {
                out.append(UInt8(ascii: "I"))
                appendBigEndian(UInt32(bitPattern: Int32(i)), into: &out)
            } else {
                out.append(UInt8(ascii: "l"))
                appendBigEndian(UInt64(bitPattern: i), into: &out)
            }
        case .uint(let u):
            // Above Int64.max: AMQP has no unsigned 64-bit type RabbitMQ accepts; keep the digits.
            try writeValue(.string(String(u)), into: &out)
        case .double(let d):
            out.append(UInt8(ascii: "d"))
            appendBigEndian(d.bitPattern, into: &out)
        case .string(let s):
            out.append(UInt8(ascii: "S"))
            let bytes = Array(s.utf8)
            appendBigEndian(UInt32(bytes.count), into: &out)
            out += bytes
        case .array(let items):
            out.append(UInt8(ascii: "A"))
            let start = out.count
            out += [0, 0, 0, 0]
            for item in items { try writeValue(item, into: &out) }
            putLength(out.count - start - 4, at: start, in: &out)
        case .object(let table):
            out.append(UInt8(ascii: "F"))
            try writeTable(table, into: &out)
        }
    }

    private static func putLength(_ n: Int, at index: Int, in out: inout [UInt8]) {
        let v = UInt32(truncatingIfNeeded: n)
        out[index] = UInt8(v >> 24)
        out[index + 1] = UInt8((v >> 16) & 0xff)
        out[index + 2] = UInt8((v >> 8) & 0xff)
        out[index + 3] = UInt8(v & 0xff)
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ v: T, into out: inout [UInt8]) {
        var be = v.bigEndian
        withUnsafeBytes(of: &be) { out.append(contentsOf: $0) }
    }

    // MARK: Decoding

    /// Tables nested deeper than this are refused (a hostile header cannot exhaust the stack).
    public static let maximumDepth = 64

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ n: Int) throws(Error) -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - offset >= n else { throw Error(description: "truncated field table") }
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(Error) -> T {
            let slice = try take(MemoryLayout<T>.size)
            var v: T = 0
            for b in slice { v = (v << 8) | T(b) }
            return v
        }

        mutating func table(depth: Int) throws(Error) -> JSONObject {
            guard depth < AMQPFieldTable.maximumDepth else { throw Error(description: "field table nested deeper than \(AMQPFieldTable.maximumDepth)") }
            let length = Int(try integer(UInt32.self))
            let end = offset + length
            guard end <= bytes.count else { throw Error(description: "truncated field table") }
            var table: JSONObject = [:]
            while offset < end {
                let keyLength = Int(try integer(UInt8.self))
                let key = String(decoding: try take(keyLength), as: UTF8.self)
                table[key] = try value(depth: depth)
            }
            guard offset == end else { throw Error(description: "field table entry runs past the table's length") }
            return table
        }

        mutating func value(depth: Int) throws(Error) -> JSON {
            let kind = try integer(UInt8.self)
            switch kind {
            case UInt8(ascii: "t"): return .bool(try integer(UInt8.self) != 0)
            case UInt8(ascii: "b"): return .int(Int64(Int8(bitPattern: try integer(UInt8.self))))
            case UInt8(ascii: "B"): return .int(Int64(try integer(UInt8.self)))
            case UInt8(ascii: "s"): return .int(Int64(Int16(bitPattern: try integer(UInt16.self))))
            case UInt8(ascii: "u"): return .int(Int64(try integer(UInt16.self)))
            case UInt8(ascii: "I"): return .int(Int64(Int32(bitPattern: try integer(UInt32.self))))
            case UInt8(ascii: "i"): return .int(Int64(try integer(UInt32.self)))
            case UInt8(ascii: "l"): return .int(Int64(bitPattern: try integer(UInt64.self)))
            case UInt8(ascii: "L"):
                let u = try integer(UInt64.self)
                return u <= UInt64(Int64.max) ? .int(Int64(u)) : .uint(u)
            case UInt8(ascii: "T"): return .int(Int64(bitPattern: try integer(UInt64.self)))
            case UInt8(ascii: "f"): return .double(Double(Float(bitPattern: try integer(UInt32.self))))
            case UInt8(ascii: "d"): return .double(Double(bitPattern: try integer(UInt64.self)))
            case UInt8(ascii: "D"):
                let scale = try integer(UInt8.self)
                let unscaled = Int32(bitPattern: try integer(UInt32.self))
                var d = Double(unscaled)
                for _ in 0..<scale { d /= 10 }
                return .double(d)
            case UInt8(ascii: "S"), UInt8(ascii: "x"):
                let n = Int(try integer(UInt32.self))
                return .string(String(decoding: try take(n), as: UTF8.self))
            case UInt8(ascii: "A"):
                let n = Int(try integer(UInt32.self))
                let end = offset + n
                guard end <= bytes.count else { throw Error(description: "truncated field array") }
                guard depth + 1 < AMQPFieldTable.maximumDepth else { throw Error(description: "field table nested deeper than \(AMQPFieldTable.maximumDepth)") }
                var items: [JSON] = []
                while offset < end { items.append(try value(depth: depth + 1)) }
                guard offset == end else { throw Error(description: "field array entry runs past the array's length") }
                return .array(items)
            case UInt8(ascii: "F"): return .object(try table(depth: depth + 1))
            case UInt8(ascii: "V"): return .null
            default: throw Error(description: "unknown field type '\(String(UnicodeScalar(kind)))' (0x\(String(kind, radix: 16)))")
            }
        }
    }
}
