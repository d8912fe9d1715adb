/// Commands in RESP, the Redis protocol: `*<argc>\r\n`, then `$<length>\r\n<bytes>\r\n` per
/// argument. Byte for byte what hiredis's `redisFormatCommandArgv` writes, written straight into
/// the connection's outbound buffer: no copy of the arguments, and no `sprintf` per argument
/// (which cost ~30 calls of `vsprintf` per task on the hot path).
enum RESPCommand {
    /// The bytes `append` adds for `args`.
    static func size(_ args: [[UInt8]]) -> Int {
        args.reduce(16) { $0 + $1.count + 16 }  // 16: generous room for `$<length>\r\n` and `\r\n`
    }

    /// Appends `args` as one command to `out` (reserve `size` first for many commands at once).
    static func append(_ args: [[UInt8]], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        appendDecimal(args.count, to: &out)
        out.append(contentsOf: crlf)
        for arg in args {
            out.append(UInt8(ascii: "$"))
            appendDecimal(arg.count, to: &out)
            out.append(contentsOf: crlf)
            out.append(contentsOf: arg)
            out.append(contentsOf: crlf)
        }
    }

    /// The decimal digits of `value` (not negative), written in place from the last one.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        var count = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        var n = value
        var i = out.count
        repeat {
            i -= 1
            out[i] = UInt8(ascii: "0") + UInt8(n % 10)
            n /= 10
        } while n > 0
    }

    private static let crlf: [UInt8] = [13, 10]
}
