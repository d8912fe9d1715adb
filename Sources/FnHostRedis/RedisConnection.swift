import CHiredis
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// One reply from Redis.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    /// The bytes of a bulk string (or status).
    public var bytes: [UInt8]? {
        switch self {
        case .string(let b): return b
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }
}

/// Why a Redis command failed: the connection broke, or Redis answered with an error.
public struct RedisError: Error, CustomStringConvertible {
    public let description: String
    /// True when the connection is unusable and must be reopened.
    public let connectionLost: Bool
}

/// A blocking connection to Redis over hiredis's reader and formatter.
///
/// Not thread-safe: each thread that talks to Redis owns its own connection. Connects lazily
/// and again after any connection error; commands are pipelined with `pipeline`.
public final class RedisConnection {
    private let url: RedisURL
    private var context: UnsafeMutablePointer<redisContext>?
    private var scriptHashes: [String: String] = [:]
    /// Socket read timeout in seconds (must exceed any blocking command's own timeout).
    public var readTimeout: Double

    public init(url: RedisURL, readTimeout: Double = 30) {
        self.url = url
        self.readTimeout = readTimeout
    }

    deinit { disconnect() }

    /// Closes the connection; the next command reconnects.
    public func disconnect() {
        if let context { redisFree(context) }
        context = nil
        scriptHashes = [:]
    }

    private static func timeval(_ seconds: Double) -> timeval {
        Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    }

    private func connected() throws -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        guard let c = redisConnectWithTimeout(url.host, Int32(url.port), Self.timeval(5)) else {
            throw RedisError(description: "cannot allocate a Redis context", connectionLost: true)
        }
        if c.pointee.err != 0 {
            let message = Self.errorString(c)
            redisFree(c)
            throw RedisError(description: "cannot connect to \(url): \(message)", connectionLost: true)
        }
        redisSetTimeout(c, Self.timeval(readTimeout))
        context = c
        if everConnected { Self.reconnectLock.withLock { Self.reconnectCount += 1 } }
        everConnected = true
        var setup: [[[UInt8]]] = []
        if let password = url.password {
            setup.append(url.username.map { [Array("AUTH".utf8), Array($0.utf8), Array(password.utf8)] } ?? [Array("AUTH".utf8), Array(password.utf8)])
        }
        if url.db != 0 { setup.append([Array("SELECT".utf8), Array(String(url.db).utf8)]) }
        if !setup.isEmpty {
            for reply in try pipeline(setup) {
                if case .error(let e) = reply {
                    disconnect()
                    // Never echo the AUTH arguments: only Redis's own message.
                    throw RedisError(description: "Redis at \(url) refused the connection setup: \(e)", connectionLost: true)
                }
            }
        }
        return c
    }

    private static func errorString(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Sends `commands` in one write and reads one reply each, in order. Redis error replies
    /// come back as `.error`; a broken connection throws (and is reopened by the next call).
    public func pipeline(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        let c = try connected()
        for command in commands { try append(command, to: c) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(c, &raw) != REDIS_OK || raw == nil {
                let message = Self.errorString(c)
                disconnect()
                throw RedisError(description: "connection to \(url) lost: \(message)", connectionLost: true)
            }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Times a connection was opened again after one had been open (a reconnect), by every
    /// connection of the process: `fnhost_broker_reconnects_total`.
    public static var reconnects: Int { reconnectLock.withLock { reconnectCount } }
    nonisolated(unsafe) private static var reconnectCount = 0
    private static let reconnectLock = ConditionLock()
    private var everConnected = false

    /// Waits up to `timeout` seconds for one reply Redis pushes without a command (a pub/sub
    /// message on a subscribed connection); `nil` when none came. A broken connection throws.
    public func readPushed(timeout: Double) throws -> RedisReply? {
        let c = try connected()
        var raw: UnsafeMutableRawPointer?
        if redisGetReplyFromReader(c, &raw) != REDIS_OK { return try lost(c) }
        if raw == nil {
            var pfd = pollfd(fd: c.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(0, timeout) * 1000))
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            if ready < 0 || redisBufferRead(c) != REDIS_OK { return try lost(c) }
            if redisGetReplyFromReader(c, &raw) != REDIS_OK { return try lost(c) }
            guard raw != nil else { return nil }
        }
        let reply = Self.convert(raw!.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    private func lost(_ c: UnsafeMutablePointer<redisContext>) throws -> RedisReply? {
        let message = Self.errorString(c)
        disconnect()
        throw RedisError(description: "connection to \(url) lost: \(message)", connectionLost: true)
    }

    /// Sends one command and returns its reply.
    public func command(_ args: [[UInt8]]) throws -> RedisReply {
        try pipeline([args])[0]
    }

    /// Sends one command given as strings.
    public func command(_ args: String...) throws -> RedisReply {
        try command(args.map { Array($0.utf8) })
    }

    private func append(_ args: [[UInt8]], to c: UnsafeMutablePointer<redisContext>) throws {
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        pointers.reserveCapacity(args.count)
        // Keep every argument's storage alive and contiguous while hiredis formats the command.
        let total = args.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: max(total, 1))
        defer { storage.deallocate() }
        var offset = 0
        for arg in args {
            arg.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { (storage + offset).update(from: base, count: arg.count) }
            }
            pointers.append(UnsafeRawPointer(storage + offset).assumingMemoryBound(to: CChar.self))
            lengths.append(arg.count)
            offset += arg.count
        }
        let rc = pointers.withUnsafeMutableBufferPointer { p in
            lengths.withUnsafeBufferPointer { l in
                redisAppendCommandArgv(c, Int32(args.count), p.baseAddress, l.baseAddress)
            }
        }
        if rc != REDIS_OK {
            let message = Self.errorString(c)
            disconnect()
            throw RedisError(description: "cannot send to \(url): \(message)", connectionLost: true)
        }
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .string(reply.str.map { Array(UnsafeRawBufferPointer(start: $0, count: reply.len).bindMemory(to: UInt8.self)) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(reply.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: reply.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(reply.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: reply.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(reply.elements)
            for i in 0..<reply.elements {
                if let e = reply.element[i] { items.append(convert(e)) } else { items.append(.null) }
            }
            return .array(items)
        default:
            return .null
        }
    }

    /// Runs a Lua script by its SHA1, loading it on first use and again after `NOSCRIPT`
    /// (a restarted Redis forgets scripts).
    public func evalScript(_ script: String, keys: [[UInt8]], args: [[UInt8]]) throws -> RedisReply {
        try pipelineScripts(script, calls: [(keys, args)])[0]
    }

    /// Runs the same script once per call, pipelined.
    public func pipelineScripts(_ script: String, calls: [(keys: [[UInt8]], args: [[UInt8]])]) throws -> [RedisReply] {
        if scriptHashes[script] == nil {
            guard case .string(let sha) = try command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.utf8)]) else {
                throw RedisError(description: "SCRIPT LOAD failed", connectionLost: false)
            }
            scriptHashes[script] = String(decoding: sha, as: UTF8.self)
        }
        let sha = Array(scriptHashes[script]!.utf8)
        let commands = calls.map { call in
            [Array("EVALSHA".utf8), sha, Array(String(call.keys.count).utf8)] + call.keys + call.args
        }
        let replies = try pipeline(commands)
        if replies.contains(where: { if case .error(let e) = $0 { return e.hasPrefix("NOSCRIPT") } else { return false } }) {
            scriptHashes[script] = nil
            return try pipelineScripts(script, calls: calls)
        }
        return replies
    }
}
