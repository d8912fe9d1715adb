/// Standard base64 (RFC 4648, with padding), as kombu encodes Redis message bodies.
/// Decoding is strict: a character outside the alphabet or bad padding is an error.
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// The base64 text of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= input.count {
            let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)]); out.append(alphabet[Int(v & 63)])
            i += 3
        }
        let rest = input.count - i
        if rest == 1 {
            let v = UInt32(input[i]) << 16
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
            out.append(alphabet[Int(v >> 18 & 63)]); out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)]); out.append(UInt8(ascii: "="))
        }
        return out
    }

    /// The bytes `text` encodes, or `nil` when it is not valid padded base64.
    /// Python's `base64.b64decode` also tolerates missing padding; so does this.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        if let decoded = text.withContiguousStorageIfAvailable({ decode(buffer: $0) }) { return decoded }
        return Array(text).withUnsafeBufferPointer { decode(buffer: $0) }
    }

    /// `decode` over contiguous bytes: four characters at a time into a preallocated array (a
    /// task body is decoded once per message on the hot path).
    static func decode(buffer: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var n = buffer.count
        while n > 0 && buffer[n - 1] == UInt8(ascii: "=") { n -= 1 }
        guard n % 4 != 1, buffer.count - n <= 2 else { return nil }
        let outCount = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1)
        var valid = true
        let out = reverse.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: outCount) { out, initialized in
                // Valid characters map to 0...63; 0xFF (not in the alphabet) sets the top bits.
                var i = 0
                var o = 0
                while i + 4 <= n {
                    let a = table[Int(buffer[i])], b = table[Int(buffer[i + 1])]
                    let c = table[Int(buffer[i + 2])], d = table[Int(buffer[i + 3])]
                    guard (a | b | c | d) & 0xC0 == 0 else { valid = false; initialized = 0; return }
                    let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    out[o] = UInt8(truncatingIfNeeded: v >> 16)
                    out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                    out[o + 2] = UInt8(truncatingIfNeeded: v)
                    i += 4
                    o += 3
                }
                if n - i >= 2 {
                    let a = table[Int(buffer[i])], b = table[Int(buffer[i + 1])]
                    let c = n - i == 3 ? table[Int(buffer[i + 2])] : 0
                    guard (a | b | c) & 0xC0 == 0 else { valid = false; initialized = 0; return }
                    let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                    out[o] = UInt8(truncatingIfNeeded: v >> 16)
                    o += 1
                    if n - i == 3 {
                        out[o] = UInt8(truncatingIfNeeded: v >> 8)
                        o += 1
                    }
                }
                initialized = o
            }
        }
        return valid ? out : nil
    }
}
