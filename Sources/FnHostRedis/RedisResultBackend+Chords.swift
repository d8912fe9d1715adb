import CeleryProtocol
import FnHostCore

/// Chord counting on the Redis result backend with Celery 5.7's keys and claim step
/// (celery/backends/redis.py, celery-protocol.md §4.3), so Python workers and fnhost hosts can
/// finish parts of the same chord: `celery-taskset-meta-<gid>.s` (size, a string), `.j` (joined
/// results, a sorted set scored by `group_index`, members `[1, id, state, result]`), `.t`
/// (total diff, a counter), `.d` (parts already counted), `.c` (the dispatch claim, then "done").
///
/// Exactly once: the part is recorded and the claim taken in one Lua script, so of all hosts
/// finishing the last parts together exactly one sees the chord complete with the claim won.
extension RedisResultBackend: ChordBackend {
    /// `result_chord_join_timeout` (3 s) x 2, as Celery computes the claim's lifetime.
    static let claimExpires = 6
    /// How long the "done" marker keeps late duplicates from recreating the chord.
    static let doneExpires = 300

    /// `celery-taskset-meta-<gid><suffix>`.
    public static func groupKey(_ groupId: String, _ suffix: String = "") -> String { "celery-taskset-meta-" + groupId + suffix }

    public func setChordSizes(_ sizes: [(groupId: String, size: Int)]) throws {
        var commands: [[[UInt8]]] = []
        for (gid, size) in sizes {
            commands.append([Array("DEL".utf8), Array(Self.groupKey(gid, ".c").utf8)])
            var set = [Array("SET".utf8), Array(Self.groupKey(gid, ".s").utf8), Array(String(size).utf8)]
            if resultExpires > 0 { set += [Array("EX".utf8), Array(String(resultExpires).utf8)] }
            commands.append(set)
        }
        try withConnection { connection in
            for reply in try connection.pipeline(commands) {
                if case .error(let e) = reply { throw RedisError(description: "setting a chord size failed: \(e)", connectionLost: false) }
            }
        }
    }

    public func chordPartReturned(_ part: ChordPart, claimToken: String) throws -> [ChordPartResult]? {
        let gid = part.groupId
        let keys = [".j", ".t", ".s", ".d", "", ".c"].map { Array(Self.groupKey(gid, $0).utf8) }
        // Signed like every result with `result_serializer: auth`, as Celery encodes the member.
        let member = try document(JSONWriter.bytes(.array([1, .string(part.taskId), .string(part.state.rawValue), part.result])))
        let score = part.groupIndex.map { String($0) } ?? "+inf"
        let groupExpires = resultExpires > 0 ? resultExpires : 0
        let args: [[UInt8]] = [
            Array(part.taskId.utf8), member, Array("1".utf8), Array(score.utf8),
            Array(String(resultExpires).utf8), Array(String(groupExpires).utf8), Array(String(Self.claimExpires).utf8),
            Array(claimToken.utf8),
        ]
        return try withConnection { connection -> [ChordPartResult]? in
            let reply = try connection.evalScript(RedisScripts.chordPartReturn, keys: keys, args: args)
            guard case .array(let items) = reply, items.count == 4, case .integer(let claimed) = items[3] else {
                throw RedisError(description: "the chord part script for \(gid) answered \(reply)", connectionLost: false)
            }
            guard claimed == 1 else { return nil }
            guard case .array(let members) = try connection.command([Array("ZRANGE".utf8), keys[0], Array("0".utf8), Array("-1".utf8)]) else {
                throw RedisError(description: "reading the results of chord \(gid) failed", connectionLost: false)
            }
            return try members.map { member in
                guard let bytes = member.bytes, case .array(let tuple)? = try? JSONParser.parse(opened(bytes)), tuple.count == 4,
                      let id = tuple[1].stringValue, let state = tuple[2].stringValue else {
                    throw RedisError(description: "chord \(gid) holds a result that is not [1, id, state, result]", connectionLost: false)
                }
                return ChordPartResult(taskId: id, state: state, result: tuple[3])
            }
        }
    }

    public func extendChordClaim(groupId: String, claimToken: String, seconds: Int) throws -> Bool {
        let keys = [".c", ".s"].map { Array(Self.groupKey(groupId, $0).utf8) }
        return try withConnection { connection in
            let reply = try connection.evalScript(RedisScripts.chordClaimExtend, keys: keys,
                                                  args: [Array(claimToken.utf8), Array(String(seconds).utf8)])
            if case .error(let e) = reply { throw RedisError(description: "extending the claim of chord \(groupId) failed: \(e)", connectionLost: false) }
            return reply == .integer(1)
        }
    }

    public func chordFinished(groupId: String, claimToken: String, failed: Bool) throws {
        try withConnection { connection in
            if failed {
                _ = try connection.command([Array("DEL".utf8), Array(Self.groupKey(groupId, ".s").utf8)])
                return
            }
            let keys = [".c", ".j", ".t", ".s", ".d"].map { Array(Self.groupKey(groupId, $0).utf8) }
            let reply = try connection.evalScript(RedisScripts.chordCleanup, keys: keys,
                                                  args: [Array(claimToken.utf8), Array(String(Self.doneExpires).utf8)])
            if case .error(let e) = reply { throw RedisError(description: "releasing chord \(groupId) failed: \(e)", connectionLost: false) }
        }
    }
}
