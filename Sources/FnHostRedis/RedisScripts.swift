/// The Lua scripts fnhost runs on Redis. Each is atomic on the server.
enum RedisScripts {
    /// Pops up to a total of messages from list keys in order and records each in `unacked` /
    /// `unacked_index` exactly as kombu does, in the same atomic step, so a host that dies after
    /// the pop loses nothing (kombu's BRPOP-then-HSET window, kombu#305, does not exist here).
    ///
    /// Each recorded delivery also gets fnhost's lease (`fnhost.leases`, score = now + lease
    /// seconds) in the same step, so a host that dies at any point after the pop leaves a lease
    /// that expires.
    ///
    /// KEYS: unacked, unacked_index, fnhost.leases, list keys... ARGV: total, queue count Q, Q
    /// queue limits, then for each list key the 1-based index of its queue, then the lease in
    /// seconds, then the largest message size read. Returns [key, message, recorded delivery tag
    /// or "", ...]. A message without a readable delivery tag, or larger than the size, is
    /// returned without bookkeeping (and a large one is never decoded here).
    static let fetch = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local total = tonumber(ARGV[1])
        local nq = tonumber(ARGV[2])
        local lease = now + tonumber(ARGV[#ARGV - 1])
        local maxSize = tonumber(ARGV[#ARGV])
        local taken = {}
        local out = {}
        local count = 0
        for i = 4, #KEYS do
          local q = tonumber(ARGV[2 + nq + (i - 3)])
          local limit = tonumber(ARGV[2 + q])
          while count < total and (taken[q] or 0) < limit do
            local m = redis.call('RPOP', KEYS[i])
            if not m then break end
            local ok, env = false, nil
            local tag = ''
            if #m <= maxSize then ok, env = pcall(cjson.decode, m) end
            if ok and type(env) == 'table' and type(env.properties) == 'table' and type(env.properties.delivery_tag) == 'string' then
              local p = env.properties
              local di = type(p.delivery_info) == 'table' and p.delivery_info or {}
              local ex = type(di.exchange) == 'string' and di.exchange or ''
              local rk = type(di.routing_key) == 'string' and di.routing_key or ''
              redis.call('ZADD', KEYS[2], now, p.delivery_tag)
              redis.call('HSET', KEYS[1], p.delivery_tag, '[' .. m .. ',' .. cjson.encode(ex) .. ',' .. cjson.encode(rk) .. ']')
              redis.call('ZADD', KEYS[3], lease, p.delivery_tag)
              tag = p.delivery_tag
            end
            out[#out + 1] = KEYS[i]
            out[#out + 1] = m
            out[#out + 1] = tag
            taken[q] = (taken[q] or 0) + 1
            count = count + 1
          end
        end
        return out
        """

    /// Gives one delivery back to the consuming end of its list, unless it was already
    /// acknowledged or restored (then `unacked` no longer holds it), and drops its lease.
    /// KEYS: unacked, unacked_index, list key, fnhost.leases. ARGV: delivery tag, envelope.
    static let requeue = """
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
          redis.call('ZREM', KEYS[2], ARGV[1])
          redis.call('ZREM', KEYS[4], ARGV[1])
          redis.call('RPUSH', KEYS[3], ARGV[2])
          return 1
        end
        return 0
        """

    /// Renews the leases of the deliveries a live host holds: lease = now + seconds, and the
    /// `unacked_index` score = now (only where the entry still exists), so neither fnhost's lease
    /// sweep nor any visibility-timeout sweep (fnhost's or a Python worker's) restores them.
    /// KEYS: unacked_index, fnhost.leases. ARGV: lease seconds, tags...
    static let renewLeases = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local lease = now + tonumber(ARGV[1])
        for i = 2, #ARGV do
          if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
            redis.call('ZADD', KEYS[1], now, ARGV[i])
            redis.call('ZADD', KEYS[2], lease, ARGV[i])
          end
        end
        return #ARGV - 1
        """

    /// Restores one delivery whose lease expired (by Redis' clock, checked here, so a lease
    /// renewed since it was read is left alone) and that is still unacknowledged; drops a lease
    /// whose delivery is gone. KEYS: unacked, unacked_index, fnhost.leases, list key.
    /// ARGV: delivery tag, envelope. Returns 1 when restored.
    static let restoreExpiredLease = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
        if not score or tonumber(score) > now then return 0 end
        redis.call('ZREM', KEYS[3], ARGV[1])
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
          redis.call('ZREM', KEYS[2], ARGV[1])
          redis.call('RPUSH', KEYS[4], ARGV[2])
          return 1
        end
        return 0
        """

    /// Drops the lease of a delivery no longer in `unacked` (acknowledged, or restored by
    /// another sweep). KEYS: unacked, fnhost.leases. ARGV: delivery tag.
    static let dropStaleLease = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return redis.call('ZREM', KEYS[2], ARGV[1]) end
        return 0
        """

    /// Stores a result document unless a SUCCESS is already stored, then publishes it on the
    /// channel of the same name (Celery's GET guard + SETEX + PUBLISH, atomic).
    /// KEYS: celery-task-meta-<id>. ARGV: document, expiry seconds (0: no expiry).
    /// A document signed by Celery's `auth` serializer (base64, not `{`) is looked into: the
    /// first 4 KB are decoded (base64 in plain Lua) and the JSON after the fourth separator is
    /// checked (a signature of up to 16384 bits fits).
    static let storeResult = """
        local cur = redis.call('GET', KEYS[1])
        if cur and string.byte(cur, 1) ~= 123 then
          local map = {}
          local alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
          for i = 1, 64 do map[string.byte(alphabet, i)] = i - 1 end
          local head = string.sub(cur, 1, 4096)
          local out = {}
          for i = 1, #head - 3, 4 do
            local a, b = map[string.byte(head, i)], map[string.byte(head, i + 1)]
            local c, d = map[string.byte(head, i + 2)], map[string.byte(head, i + 3)]
            if not a or not b then break end
            local v = a * 262144 + b * 4096 + (c or 0) * 64 + (d or 0)
            out[#out + 1] = string.char(math.floor(v / 65536) % 256)
            if not c then break end
            out[#out + 1] = string.char(math.floor(v / 256) % 256)
            if not d then break end
            out[#out + 1] = string.char(v % 256)
          end
          local raw = table.concat(out)
          local sep = string.char(0, 1)
          local pos = 1
          for _ = 1, 4 do
            local at = string.find(raw, sep, pos, true)
            if not at then pos = nil break end
            pos = at + 2
          end
          cur = pos and string.sub(raw, pos, pos + 63) or nil
        end
        if cur and string.find(string.sub(cur, 1, 64), '"status":%s*"SUCCESS"') then return 0 end
        local ttl = tonumber(ARGV[2])
        if ttl > 0 then redis.call('SETEX', KEYS[1], ttl, ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1]) end
        redis.call('PUBLISH', KEYS[1], ARGV[1])
        return 1
        """

    /// Releases kombu's `unacked_mutex` only if this sweep still owns it.
    /// KEYS: unacked_mutex. ARGV: token.
    static let releaseMutex = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """

    /// Parks one delivery somewhere durable and acknowledges it, atomically: with a score, into
    /// a sorted set (the delayed store, score = ETA); without, at the end of a list (the
    /// dead-letter queue). KEYS: unacked, unacked_index, target, [fnhost.leases]. ARGV:
    /// delivery tag (may be empty), member, [score].
    static let parkAndAck = """
        if ARGV[3] then
          redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
        else
          redis.call('RPUSH', KEYS[3], ARGV[2])
        end
        if ARGV[1] ~= '' then
          redis.call('HDEL', KEYS[1], ARGV[1])
          redis.call('ZREM', KEYS[2], ARGV[1])
          if KEYS[4] then redis.call('ZREM', KEYS[4], ARGV[1]) end
        end
        return 1
        """

    /// Puts due delayed messages back at the consuming end of their lists. ZREM decides which
    /// caller moves a member, so each goes back once. KEYS: delayed. ARGV: limit, separator.
    static let moveDue = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
        local moved = 0
        for _, m in ipairs(due) do
          local i = string.find(m, ARGV[2], 1, true)
          if redis.call('ZREM', KEYS[1], m) == 1 and i then
            redis.call('RPUSH', string.sub(m, 1, i - 1), string.sub(m, i + #ARGV[2]))
            moved = moved + 1
          end
        end
        return moved
        """

    /// Takes one entry out of the dead-letter queue and publishes its message, atomically; does
    /// nothing if the entry is no longer there. KEYS: dlq, list key. ARGV: entry, message.
    static let replayDeadLetter = """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
          redis.call('LPUSH', KEYS[2], ARGV[2])
          return 1
        end
        return 0
        """

    /// Celery 5.7's CHORD_PART_RETURN_LUA (celery/backends/redis.py), unchanged but for one
    /// line: a caller that already holds the claim with the same token is told it won, so a
    /// retried settlement applies the body it claimed. KEYS: .j .t .s .d <group> .c.
    /// ARGV: task id, member, ordered, score, expires, group expires, claim expires, token.
    static let chordPartReturn = """
        local jkey, tkey, skey, dkey, gkey, ckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
        local tid, value, ordered, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local expires, group_expires = tonumber(ARGV[5]), tonumber(ARGV[6])
        local claim_expires = tonumber(ARGV[7])
        local claim_token = ARGV[8]
        local done_marker = redis.call('GET', ckey)
        if done_marker == 'done' then
            return {-1, 0, 0, 0}
        end
        local member = tid .. ':' .. score
        if redis.call('SISMEMBER', dkey, member) == 0 then
            if ordered == '1' then
                redis.call('ZADD', jkey, score, value)
            else
                redis.call('RPUSH', jkey, value)
            end
            redis.call('SADD', dkey, member)
        end
        local readycount
        if ordered == '1' then
            readycount = redis.call('ZCOUNT', jkey, '-inf', '+inf')
        else
            readycount = redis.call('LLEN', jkey)
        end
        if expires > 0 then
            for _, key in ipairs({jkey, tkey, skey, dkey}) do
                redis.call('EXPIRE', key, expires)
            end
            if group_expires > 0 then
                redis.call('EXPIRE', gkey, group_expires)
            end
        end
        local totaldiff = redis.call('GET', tkey)
        local size = redis.call('GET', skey)
        local claimed = 0
        if size and readycount == tonumber(size) + tonumber(totaldiff or 0) then
            if done_marker == claim_token then
                claimed = 1
            elseif redis.call('SET', ckey, claim_token, 'NX', 'EX', claim_expires) then
                claimed = 1
            end
        end
        return {readycount, totaldiff, size, claimed}
        """

    /// Celery 5.7's CHORD_CLEANUP_LUA: if the claim is still ours, delete the chord's keys and
    /// leave a "done" marker. KEYS: .c .j .t .s .d. ARGV: token, done expiry.
    static let chordCleanup = """
        local ckey, jkey, tkey, skey, dkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
        local token = ARGV[1]
        local done_expires = tonumber(ARGV[2])
        if redis.call('GET', ckey) == token then
            redis.call('DEL', jkey, tkey, skey, dkey)
            if done_expires and done_expires > 0 then
                redis.call('SET', ckey, 'done', 'EX', done_expires)
            end
            return 1
        end
        return 0
        """

    /// Celery 5.7's CHORD_CLAIM_EXTEND_LUA: extend the dispatch claim while this host owns it,
    /// or take it back if it expired while the chord's size is still there. KEYS: .c .s.
    /// ARGV: token, seconds. Returns 1 when this host owns the claim.
    static let chordClaimExtend = """
        local ckey, skey = KEYS[1], KEYS[2]
        local token = ARGV[1]
        local expires = tonumber(ARGV[2])
        if redis.call('GET', ckey) == token then
            return redis.call('EXPIRE', ckey, expires)
        end
        if not redis.call('GET', ckey) and redis.call('EXISTS', skey) == 1 then
            return redis.call('SET', ckey, token, 'EX', expires, 'NX') and 1 or 0
        end
        return 0
        """
}
