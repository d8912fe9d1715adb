import CRabbitMQ
import CeleryProtocol
import Testing
@testable import FnHostAMQP

/// The field-table codec against bytes py-amqp 5.x wrote for the headers of a real Celery 5.7
/// task message (/work/shared/fixtures/celery-5.7/amqp_task_message.json, plus a custom header).
@Suite struct AMQPFieldTableTests {
    /// py-amqp's `_write_table` of the fixture's headers with
    /// `custom = {"nested": [1, 2.5, True, None, "x"], "neg": -7}` added.
    static let pyAMQPBytes = Base64.decode("AAABiwRsYW5nUwAAAAJweQR0YXNrUwAAAAliZW5jaC5hZGQCaWRTAAAAJDdkOGZkZTYxLWYzYWMtNDg1NC04ODEwLTg5NzY4NTdlMmVmZgZzaGFkb3dWA2V0YVYHZXhwaXJlc1YFZ3JvdXBWC2dyb3VwX2luZGV4VgdyZXRyaWVzSQAAAAAJdGltZWxpbWl0QQAAAAJWVgdyb290X2lkUwAAACQ3ZDhmZGU2MS1mM2FjLTQ4NTQtODgxMC04OTc2ODU3ZTJlZmYJcGFyZW50X2lkVghhcmdzcmVwclMAAAAGKDIsIDMpCmt3YXJnc3JlcHJTAAAAAnt9Bm9yaWdpblMAAAALZ2VuMjk4NTBAdm0NaWdub3JlX3Jlc3VsdFYVcmVwbGFjZWRfdGFza19uZXN0aW5nSQAAAAAPc3RhbXBlZF9oZWFkZXJzVgZzdGFtcHNGAAAAAAZjdXN0b21GAAAALAZuZXN0ZWRBAAAAF0kAAAABZEAEAAAAAAAAdAFWUwAAAAF4A25lZ0n////5".utf8)!

    static var headers: JSONObject {
        var h: JSONObject = [
            "lang": "py", "task": "bench.add", "id": "7d8fde61-f3ac-4854-8810-8976857e2eff", "shadow": nil, "eta": nil,
            "expires": nil, "group": nil, "group_index": nil, "retries": 0, "timelimit": [nil, nil],
            "root_id": "7d8fde61-f3ac-4854-8810-8976857e2eff", "parent_id": nil, "argsrepr": "(2, 3)", "kwargsrepr": "{}",
            "origin": "gen29850@vm", "ignore_result": nil, "replaced_task_nesting": 0, "stamped_headers": nil, "stamps": .object([:]),
        ]
        h["custom"] = .object(["nested": [1, 2.5, true, nil, "x"], "neg": -7])
        return h
    }

    @Test func decodesWhatPyAMQPWrites() throws {
        #expect(try AMQPFieldTable.decode(Self.pyAMQPBytes) == Self.headers)
    }

    @Test func encodesByteForByteAsPyAMQPDoes() throws {
        #expect(try AMQPFieldTable.encode(Self.headers) == Self.pyAMQPBytes)
    }

    @Test func keepsSixtyFourBitIntegersAndNesting() throws {
        let table: JSONObject = ["big": .int(1 << 40), "min": .int(Int64.min), "deep": .object(["a": .array([.object(["b": "c"])])])]
        #expect(try AMQPFieldTable.decode(AMQPFieldTable.encode(table)) == table)
    }

    @Test func readsEveryRabbitMQFieldType() throws {
        // b, B, s, u, i, L, T, f, D, x: types py-amqp does not write but RabbitMQ may.
        var body: [UInt8] = []
        func entry(_ key: String, _ type: Character, _ value: [UInt8]) {
            body.append(UInt8(key.utf8.count)); body += Array(key.utf8); body.append(UInt8(ascii: type.unicodeScalars.first!)); body += value
        }
        entry("b", "b", [0xff])
        entry("B", "B", [0xff])
        entry("s", "s", [0xff, 0xfe])
        entry("u", "u", [0xff, 0xfe])
        entry("i", "i", [0xff, 0xff, 0xff, 0xff])
        entry("T", "T", [0, 0, 0, 0, 0x65, 0x00, 0x00, 0x00])
        entry("f", "f", [0x3f, 0xc0, 0, 0])
        entry("D", "D", [2, 0, 0, 0x01, 0x2c])
        entry("x", "x", [0, 0, 0, 2, 0x68, 0x69])
        let n = UInt32(body.count)
        let bytes = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + body
        let t = try AMQPFieldTable.decode(bytes)
        #expect(t["b"] == .int(-1))
        #expect(t["B"] == .int(255))
        #expect(t["s"] == .int(-2))
        #expect(t["u"] == .int(65534))
        #expect(t["i"] == .int(4_294_967_295))
        #expect(t["T"] == .int(0x6500_0000))
        #expect(t["f"] == .double(1.5))
        #expect(t["D"] == .double(3))
        #expect(t["x"] == "hi")
    }

    @Test func refusesTruncatedAndHostileTables() {
        let good = try! AMQPFieldTable.encode(["k": "value"])
        for cut in 1..<good.count {
            #expect(throws: AMQPFieldTable.Error.self) { try AMQPFieldTable.decode(Array(good.prefix(cut))) }
        }
        #expect(throws: AMQPFieldTable.Error.self) { try AMQPFieldTable.decode([0, 0, 0, 3, 1, 0x6b, 0x3f]) }
        // Tables nested past the depth limit are refused, not recursed into.
        var nested: JSONObject = ["leaf": 1]
        for _ in 0..<(AMQPFieldTable.maximumDepth + 1) { nested = ["n": .object(nested)] }
        let deep = try! AMQPFieldTable.encode(nested)
        #expect(throws: AMQPFieldTable.Error.self) { try AMQPFieldTable.decode(deep) }
    }
}

/// The struct walker that reads headers of received messages, against the codec: a table
/// encoded here and decoded by rabbitmq-c reads back the same.
@Suite struct AMQPHeaderWalkerTests {
    @Test func readsBackWhatRabbitMQCDecoded() throws {
        var table = AMQPFieldTableTests.headers
        table["big"] = .int(1 << 40)
        let bytes = try AMQPFieldTable.encode(table)
        var pool = amqp_pool_t()
        init_amqp_pool(&pool, 4096)
        defer { empty_amqp_pool(&pool) }
        var decoded = amqp_table_t()
        var offset = 0
        let rc = bytes.withUnsafeBytes { raw in
            amqp_decode_table(amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)), &pool, &decoded, &offset)
        }
        #expect(rc == 0)
        #expect(try AMQPConnection.json(decoded, depth: 0) == table)
    }
}
