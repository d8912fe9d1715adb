import CHiredis
@testable import FnHostRedis
import Testing

/// fnhost writes commands itself; hiredis's `redisFormatCommandArgv` is the reference.
@Suite struct RESPCommandTests {
    static func hiredis(_ args: [[UInt8]]) -> [UInt8] {
        let storage = args.map { arg -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(arg.count, 1))
            arg.withUnsafeBytes { raw in if let base = raw.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: arg.count) } }
            return p
        }
        defer { storage.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = storage.map { UnsafePointer($0) }
        var lengths = args.map(\.count)
        var command: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&command, Int32(args.count), &pointers, &lengths)
        defer { redisFreeCommand(command) }
        return Array(UnsafeRawBufferPointer(start: command, count: Int(length)))
    }

    @Test(arguments: [
        [Array("PING".utf8)],
        [Array("SET".utf8), Array("k".utf8), []],
        [Array("EVALSHA".utf8), Array("0123456789abcdef0123456789abcdef01234567".utf8), Array("2".utf8), Array("math.add".utf8),
         Array("unacked".utf8), [0, 13, 10, 255, 0x22]],
        [Array("LPUSH".utf8), [UInt8](repeating: 0x61, count: 9), [UInt8](repeating: 0x62, count: 10), [UInt8](repeating: 0x63, count: 99_999)],
    ] as [[[UInt8]]])
    func matchesHiredisByteForByte(args: [[UInt8]]) {
        #expect(RESPCommand.encode([args]) == Self.hiredis(args))
    }

    @Test func manyArguments() {
        let args = (0..<1234).map { Array("arg\($0)".utf8) }
        #expect(RESPCommand.encode([args]) == Self.hiredis(args))
    }

    @Test func aPipelineIsItsCommandsOneAfterTheOther() {
        let commands: [[[UInt8]]] = [
            [Array("MULTI".utf8)],
            [Array("ZREM".utf8), Array("unacked_index".utf8), Array("t-1".utf8), Array("t-2".utf8)],
            [Array("HDEL".utf8), Array("unacked".utf8), [], [0, 255]],
            [Array("EXEC".utf8)],
        ]
        #expect(RESPCommand.encode(commands) == commands.flatMap { Self.hiredis($0) })
        #expect(RESPCommand.encode([]) == [])
    }

    @Test func decimals() {
        for value in [0, 7, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 12_345, 99_999, 100_000, 1 << 40, Int.max] {
            var out: [UInt8] = [42]
            RESPCommand.appendDecimal(value, to: &out)
            #expect(String(decoding: out.dropFirst(), as: UTF8.self) == String(value))
        }
    }
}
