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

/// A blocking connection to Redis: hiredis's formatter and reader over a `RedisSocket` (TCP, or
/// TLS for `rediss://`, verified by default and never downgraded to plaintext).
///
/// Not thread-safe: each thread that talks to Redis owns its own connection. Connects lazily
/// and again after any connection error; commands are pipelined with `pipeline`. Error
/// descriptions name the server by its masked URL: a password never reaches them.
public final class RedisConnection {
    private let url: RedisURL
    private var socket: RedisSocket?
    private var reader: UnsafeMutablePointer<redisReader>?
    /// SHA1 of each script loaded on this connection, by script. A short list searched with `==`,
    /// which is immediate for the same constant (same storage), where a dictionary would hash
    /// the whole script text on every call.
    private var scriptHashes: [(script: String, sha: [UInt8])] = []
    /// Where replies are read into, before the hiredis reader takes them. Left uninitialized:
    /// only the pages a read reaches become resident (a host holds one connection per list key).
    private var inbound: [UInt8]
    /// Socket read timeout in seconds (must exceed any blocking command's own timeout).
    public var readTimeout: Double {
        didSet { socket?.setTimeouts(read: readTimeout) }
    }

    /// `readBufferSize`: the most read from the socket at once (a larger reply takes several reads).
    public init(url: RedisURL, readTimeout: Double = 30, readBufferSize: Int = 65536) {
        self.url = url
        self.readTimeout = readTimeout
        self.inbound = [UInt8](unsafeUninitializedCapacity: max(512, readBufferSize)) { _, count in count = max(512, readBufferSize) }
    }

    deinit { disconnect() }

    /// Closes the connection; the next command reconnects.
    public func disconnect() {
        socket?.close()
        socket = nil
        if let reader { redisReaderFree(reader) }
        reader = nil
        scriptHashes = []
    }

    private func connected() throws -> (RedisSocket, UnsafeMutablePointer<redisReader>) {
        if let socket, let reader { return (socket, reader) }
        let socket: RedisSocket
        do { socket = try RedisSocket.connect(host: url.host, port: url.port, timeout: 5, tls: url.tls) } catch {
            throw RedisError(description: "cannot connect to \(url): \(error.description)", connectionLost: true)
        }
        guard let reader = redisReaderCreate() else {
            socket.close()
            throw RedisError(description: "cannot allocate a Redis reader", connectionLost: true)
        }
        socket.setTimeouts(read: readTimeout)
        self.socket = socket
        self.reader = reader
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
        return (socket, reader)
    }

    private func lostError(_ what: String, _ failure: any Error) -> RedisError {
        disconnect()
        return RedisError(description: "connection to \(url) lost: \(what)\(failure)", connectionLost: true)
    }

    /// The next complete reply the reader holds, or nil when it needs more bytes.
    private func nextReply(_ reader: UnsafeMutablePointer<redisReader>) throws -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &raw) != REDIS_OK {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            disconnect()
            throw RedisError(description: "connection to \(url) lost: protocol error: \(message)", connectionLost: true)
        }
        guard let raw else { return nil }
        let reply = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    /// Reads once from the socket into the reader; false when TLS had no application data yet.
    @discardableResult
    private func fill(_ socket: RedisSocket, _ reader: UnsafeMutablePointer<redisReader>, once: Bool = false) throws -> Bool {
        let n: Int
        do { n = try inbound.withUnsafeMutableBytes { buffer in try socket.read(into: buffer, once: once) } } catch {
            throw lostError("", error)
        }
        guard n > 0 else { return false }
        inbound.withUnsafeBytes { buffer in
            _ = redisReaderFeed(reader, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), n)
        }
        return true
    }

    /// Sends `commands` in one write and reads one reply each, in order. Redis error replies
    /// come back as `.error`; a broken connection throws (and is reopened by the next call).
    public func pipeline(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        let (socket, reader) = try write(commands)
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            while true {
                if let reply = try nextReply(reader) {
                    replies.append(reply)
                    break
                }
                try fill(socket, reader)
            }
        }
        return replies
    }

    /// Connects if need be and sends `commands` in one write; the connection, to read replies on.
    private func write(_ commands: [[[UInt8]]]) throws -> (RedisSocket, UnsafeMutablePointer<redisReader>) {
        let (socket, reader) = try connected()
        let outbound = RESPCommand.encode(commands)
        do { try outbound.withUnsafeBytes { buffer in try socket.write(buffer) } } catch {
            throw lostError("cannot send: ", error)
        }
        return (socket, reader)
    }

    /// Times a connection was opened again after one had been open (a reconnect), by every
    /// connection of the process: `fnhost_broker_reconnects_total`.
    public static var reconnects: Int { reconnectLock.withLock { reconnectCount } }
    nonisolated(unsafe) private static var reconnectCount = 0
    private static let reconnectLock = ConditionLock()
    private var everConnected = false

    /// Waits up to `timeout` seconds for one reply Redis pushes without a command (a pub/sub
    /// message on a subscribed connection); `nil` when none came. A broken connection throws.
    /// Over TLS, bytes OpenSSL already decrypted (`SSL_pending`) are read before polling.
    public func readPushed(timeout: Double) throws -> RedisReply? {
        let (socket, reader) = try connected()
        if let reply = try nextReply(reader) { return reply }
        if !socket.hasBufferedData {
            var pfd = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(0, timeout) * 1000))
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            if ready < 0 {
                disconnect()
                throw RedisError(description: "connection to \(url) lost: poll failed", connectionLost: true)
            }
        }
        return try receive()
    }

    /// Sends one command without reading its reply (read it with `receive`): for a blocking
    /// command that many connections wait on at once under one `poll`.
    public func send(_ args: [[UInt8]]) throws {
        _ = try write([args])
    }

    /// The open socket's descriptor, to `poll` before `receive`, and whether bytes may be read
    /// that `poll` cannot see (decrypted by OpenSSL already); `nil` when closed.
    public var pollState: (fd: Int32, buffered: Bool)? {
        guard let socket, reader != nil else { return nil }
        return (socket.fd, socket.hasBufferedData)
    }

    /// The next reply of a command sent with `send`, reading once from the socket if need be
    /// (call it when `poll` says the socket is readable); `nil` while the reply is incomplete.
    /// A broken connection throws (and the next command reconnects).
    public func receive() throws -> RedisReply? {
        guard let socket, let reader else { throw RedisError(description: "connection to \(url) is closed", connectionLost: true) }
        if let reply = try nextReply(reader) { return reply }
        guard try fill(socket, reader, once: true) else { return nil }
        return try nextReply(reader)
    }

    /// Sends one command and returns its reply.
    public func command(_ args: [[UInt8]]) throws -> RedisReply {
        try pipeline([args])[0]
    }

    /// Sends one command given as strings.
    public func command(_ args: String...) throws -> RedisReply {
        try command(args.map { Array($0.utf8) })
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
        let sha: [UInt8]
        if let loaded = scriptHashes.first(where: { $0.script == script }) {
            sha = loaded.sha
        } else {
            guard case .string(let loaded) = try command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.utf8)]) else {
                throw RedisError(description: "SCRIPT LOAD failed", connectionLost: false)
            }
            scriptHashes.append((script: script, sha: loaded))
            sha = loaded
        }
        let commands = calls.map { call in
            [Array("EVALSHA".utf8), sha, Array(String(call.keys.count).utf8)] + call.keys + call.args
        }
        let replies = try pipeline(commands)
        if replies.contains(where: { if case .error(let e) = $0 { return e.hasPrefix("NOSCRIPT") } else { return false } }) {
            scriptHashes.removeAll { $0.script == script }
            return try pipelineScripts(script, calls: calls)
        }
        return replies
    }
}
