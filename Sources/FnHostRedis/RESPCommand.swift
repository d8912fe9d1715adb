/// Commands in RESP, the Redis protocol: `*<argc>\r\n`, then `$<length>\r\n<bytes>\r\n` per
/// argument. Byte for byte what hiredis's `redisFormatCommandArgv` writes, in one buffer of the
/// exact size written through a pointer: no `sprintf` per argument (hiredis called `vsprintf`
/// ~30 times per task on the hot path) and no growth checks per piece.
enum RESPCommand {
    /// `commands`, one after the other, as one buffer (a pipeline).
    static func encode(_ commands: [[[UInt8]]]) -> [UInt8] {
        var total = 0
        for args in commands {
            total += 3 + digits(args.count)
            for arg in args { total += 5 + digits(arg.count) + arg.count }
        }
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            guard var p = buffer.baseAddress else { return }
            for args in commands {
                p.initialize(to: UInt8(ascii: "*"))
                p = writeDecimal(args.count, at: p + 1)
                p = writeCRLF(at: p)
                for arg in args {
                    p.initialize(to: UInt8(ascii: "$"))
                    p = writeDecimal(arg.count, at: p + 1)
                    p = writeCRLF(at: p)
                    arg.withUnsafeBufferPointer { source in
                        if let base = source.baseAddress { p.initialize(from: base, count: source.count) }
                    }
                    p = writeCRLF(at: p + arg.count)
                }
            }
            initialized = total
        }
    }

    /// Appends the decimal digits of `value` (not negative) to `out` (what `encode` writes for
    /// a count or a length; the tests check it on numbers too large for an argument).
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        out.append(contentsOf: [UInt8](unsafeUninitializedCapacity: digits(value)) { buffer, initialized in
            _ = writeDecimal(value, at: buffer.baseAddress!)
            initialized = digits(value)
        })
    }

    /// How many decimal digits `value` (not negative) has.
    @inline(__always)
    static func digits(_ value: Int) -> Int {
        if value < 10 { return 1 }
        if value < 100 { return 2 }
        if value < 1000 { return 3 }
        var count = 4
        var rest = value / 10_000
        while rest > 0 {
            rest /= 10
            count += 1
        }
        return count
    }

    /// Writes the digits of `value` (not negative) at `p`, from the last one; returns the end.
    @inline(__always)
    private static func writeDecimal(_ value: Int, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        let count = digits(value)
        var i = count
        var n = value
        repeat {
            i -= 1
            (p + i).initialize(to: UInt8(ascii: "0") + UInt8(n % 10))
            n /= 10
        } while n > 0
        return p + count
    }

    @inline(__always)
    private static func writeCRLF(at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        p.initialize(to: 13)
        (p + 1).initialize(to: 10)
        return p + 2
    }
}
