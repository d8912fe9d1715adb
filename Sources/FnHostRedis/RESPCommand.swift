/// Commands in RESP, the Redis protocol: `*<argc>\r\n`, then `$<length>\r\n<bytes>\r\n` per
/// argument. Byte for byte what hiredis's `redisFormatCommandArgv` writes, written straight into
/// the connection's outbound buffer: no copy of the arguments, and no `sprintf` per argument
/// (which cost ~30 calls of `vsprintf` per task on the hot path).
enum RESPCommand {
    /// Appends `args` as one command to `out`.
    static func append(_ args: [[UInt8]], to out: inout [UInt8]) {
        var size = 16
        for arg in args { size += arg.count + 16 }
        out.reserveCapacity(out.count + size)
        out.append(UInt8(ascii: "*"))
        appendDecimal(args.count, to: &out)
        out.append(13)
        out.append(10)
        for arg in args {
            out.append(UInt8(ascii: "$"))
            appendDecimal(arg.count, to: &out)
            out.append(13)
            out.append(10)
            out.append(contentsOf: arg)
            out.append(13)
            out.append(10)
        }
    }

    /// The decimal digits of `value` (not negative).
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while n > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                count += 1
            }
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
        }
    }
}
