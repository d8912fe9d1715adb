import CRabbitMQ
import CeleryProtocol
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// One message received from a consumer, copied out of rabbitmq-c's buffers.
public struct AMQPIncoming: Sendable {
    public var consumerTag: String
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: [UInt8]
}

/// The basic properties fnhost reads and writes (celery-protocol.md §1.1, §3.2).
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: JSONObject?
    /// 1 transient, 2 persistent.
    public var deliveryMode: UInt8?
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a string.
    public var expiration: String?

    public init(contentType: String? = nil, contentEncoding: String? = nil, headers: JSONObject? = nil, deliveryMode: UInt8? = nil,
                priority: UInt8? = nil, correlationId: String? = nil, replyTo: String? = nil, expiration: String? = nil) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
    }
}

/// A blocking AMQP 0-9-1 connection over librabbitmq-c with one channel (number 1).
///
/// Not thread-safe: one thread at a time (the owner serializes calls). Any error that leaves
/// the connection unusable closes it (`isOpen` false); the owner reconnects with `open()`.
/// A channel error (406, 404) closes only the channel, which is reopened before throwing.
public final class AMQPConnection {
    public let url: AMQPURL
    public let tls: TLSOptions
    /// Seconds between heartbeats (`broker_heartbeat`); 0 turns them off.
    public let heartbeat: Int
    /// The client-provided connection name RabbitMQ shows (`connection_name`).
    public let name: String
    private var state: amqp_connection_state_t?
    private let channel: amqp_channel_t = 1
    private var confirming = false
    private var publishSequence: UInt64 = 0
    private var confirmedThrough: UInt64 = 0
    /// Seconds a synchronous method (declare, qos, consume) may take.
    public var rpcTimeout: Double = 30

    public init(url: AMQPURL, tls: TLSOptions = .init(), heartbeat: Int = 120, name: String = "fnhost") {
        self.url = url
        self.tls = tls
        self.heartbeat = heartbeat
        self.name = name
    }

    deinit { close() }

    public var isOpen: Bool { state != nil }

    /// The socket's descriptor, for polling (-1 when closed).
    public var socketDescriptor: Int32 { state.map { amqp_get_sockfd($0) } ?? -1 }

    /// True when rabbitmq-c has read bytes or frames not yet handed out.
    public var hasBufferedInput: Bool {
        guard let state else { return false }
        return amqp_data_in_buffer(state) != 0 || amqp_frames_enqueued(state) != 0
    }

    private static func timeval(_ seconds: Double) -> timeval {
        Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    }

    /// Connects, logs in and opens the channel (with publisher confirms when `confirms`).
    public func open(confirms: Bool = false) throws(AMQPError) {
        close()
        guard let conn = amqp_new_connection() else { throw AMQPError("cannot allocate an AMQP connection") }
        state = conn
        let socket: OpaquePointer?
        if url.useTLS {
            socket = amqp_ssl_socket_new(conn)
            guard let socket else { close(); throw AMQPError("cannot create a TLS socket") }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyPeer ? 1 : 0)
            if let ca = tls.caCertificates {
                let rc = amqp_ssl_socket_set_cacert(socket, ca)
                if rc != AMQP_STATUS_OK.rawValue { close(); throw AMQPError("broker_use_ssl: cannot read ca_certs \(ca): \(Self.statusText(rc))") }
            }
            if let cert = tls.certificateFile {
                guard let key = tls.keyFile else { close(); throw AMQPError("broker_use_ssl: certfile needs keyfile") }
                let rc = amqp_ssl_socket_set_key(socket, cert, key)
                if rc != AMQP_STATUS_OK.rawValue { close(); throw AMQPError("broker_use_ssl: cannot read certfile \(cert) / keyfile: \(Self.statusText(rc))") }
            }
        } else {
            socket = amqp_tcp_socket_new(conn)
            guard socket != nil else { close(); throw AMQPError("cannot create a TCP socket") }
        }
        var connectTimeout = Self.timeval(10)
        let rc = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &connectTimeout)
        if rc != AMQP_STATUS_OK.rawValue {
            close()
            if url.useTLS && (rc == AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue || rc == AMQP_STATUS_SSL_ERROR.rawValue
                || rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue || rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue) {
                throw AMQPError("TLS handshake with \(url.host):\(url.port) failed: \(Self.statusText(rc))"
                    + (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue || rc == AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue
                        ? " (is the server's certificate signed by the CA in broker_use_ssl.ca_certs\(tls.caCertificates.map { " = \($0)" } ?? ""), and is the host name in it?)" : ""))
            }
            throw AMQPError("cannot connect to \(url.host):\(url.port): \(Self.statusText(rc))")
        }
        var rpc = Self.timeval(rpcTimeout)
        amqp_set_rpc_timeout(conn, &rpc)
        let login = fnhost_amqp_login_plain(conn, url.virtualHost, 131072, Int32(heartbeat), url.username, url.password)
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            let error = describe(login, doing: "logging in as \(url.username) to virtual host \(url.virtualHost)")
            close()
            throw error
        }
        amqp_channel_open(conn, channel)
        try check("opening a channel")
        confirming = false
        publishSequence = 0
        confirmedThrough = 0
        if confirms {
            let reply = fnhost_amqp_confirm_select(conn, channel)
            if reply.reply_type != AMQP_RESPONSE_NORMAL { throw fail(describe(reply, doing: "turning on publisher confirms")) }
            confirming = true
        }
    }

    /// Closes the connection (politely when it is still up).
    public func close() {
        guard let state else { return }
        self.state = nil
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        amqp_destroy_connection(state)
    }

    /// Drops the connection at once, without the closing handshake (after an I/O error).
    private func abandon() {
        guard let state else { return }
        self.state = nil
        amqp_destroy_connection(state)
    }

    private func live() throws(AMQPError) -> amqp_connection_state_t {
        guard let state else { throw AMQPError("the AMQP connection is closed") }
        return state
    }

    // MARK: Errors

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    /// Turns a failed reply into an error; a closed channel is acknowledged and reopened, a
    /// closed connection abandoned.
    private func describe(_ reply: amqp_rpc_reply_t, doing what: String) -> AMQPError {
        switch reply.reply_type {
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let text = Self.statusText(reply.library_error)
            return AMQPError("\(what) failed: \(text)")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == fnhost_amqp_channel_close_method(), let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let text = Self.string(close.reply_text)
                if let state {
                    var ok = amqp_channel_close_ok_t(dummy: 0)
                    _ = amqp_send_method(state, channel, fnhost_amqp_channel_close_ok_method(), &ok)
                    amqp_channel_open(state, channel)
                    if amqp_get_rpc_reply(state).reply_type != AMQP_RESPONSE_NORMAL { abandon() }
                    else if confirming {
                        if fnhost_amqp_confirm_select(state, channel).reply_type != AMQP_RESPONSE_NORMAL { abandon() }
                        publishSequence = 0
                        confirmedThrough = 0
                    }
                }
                return AMQPError("\(what) failed: the broker closed the channel: \(close.reply_code) \(text)", replyCode: Int(close.reply_code),
                                 connectionLost: state == nil)
            }
            if reply.reply.id == fnhost_amqp_connection_close_method(), let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let text = Self.string(close.reply_text)
                if let state {
                    var ok = amqp_connection_close_ok_t(dummy: 0)
                    _ = amqp_send_method(state, 0, fnhost_amqp_connection_close_ok_method(), &ok)
                }
                abandon()
                return AMQPError("\(what) failed: the broker closed the connection: \(close.reply_code) \(text)", replyCode: Int(close.reply_code))
            }
            return AMQPError("\(what) failed: unexpected server reply \(String(cString: amqp_method_name(reply.reply.id)))")
        default:
            return AMQPError("\(what) failed: no reply")
        }
    }

    /// Closes the connection unless `error` only closed the channel, and returns it.
    private func fail(_ error: AMQPError) -> AMQPError {
        if error.connectionLost { abandon() }
        return error
    }

    private func check(_ what: String) throws(AMQPError) {
        let state = try live()
        let reply = amqp_get_rpc_reply(state)
        if reply.reply_type != AMQP_RESPONSE_NORMAL { throw fail(describe(reply, doing: what)) }
    }

    private func checkStatus(_ status: Int32, _ what: String) throws(AMQPError) {
        if status != AMQP_STATUS_OK.rawValue {
            abandon()
            throw AMQPError("\(what) failed: \(Self.statusText(status))")
        }
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let p = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: bytes.len), as: UTF8.self)
    }

    static func array(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let p = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: bytes.len))
    }

    // MARK: Topology

    /// `queue.declare`; with `passive`, only checks that it exists.
    public func declareQueue(_ name: String, passive: Bool = false, durable: Bool, exclusive: Bool = false, autoDelete: Bool = false,
                             arguments: JSONObject = [:]) throws(AMQPError) {
        let state = try live()
        try withTable(arguments) { table throws(AMQPError) in
            withBytes(name) { q in _ = amqp_queue_declare(state, channel, q, passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0, table) }
            try check("declaring queue '\(name)'")
        }
    }

    /// `exchange.declare`.
    public func declareExchange(_ name: String, type: String, durable: Bool, autoDelete: Bool = false, arguments: JSONObject = [:]) throws(AMQPError) {
        let state = try live()
        try withTable(arguments) { table throws(AMQPError) in
            withBytes(name) { e in withBytes(type) { t in _ = amqp_exchange_declare(state, channel, e, t, 0, durable ? 1 : 0, autoDelete ? 1 : 0, 0, table) } }
            try check("declaring exchange '\(name)'")
        }
    }

    /// `queue.bind`.
    public func bind(queue: String, exchange: String, routingKey: String) throws(AMQPError) {
        let state = try live()
        withBytes(queue) { q in withBytes(exchange) { e in withBytes(routingKey) { r in _ = amqp_queue_bind(state, channel, q, e, r, amqp_empty_table) } } }
        try check("binding queue '\(queue)' to exchange '\(exchange)'")
    }

    /// Messages ready in `queue` (a passive `queue.declare`); throws 404 when it does not exist.
    public func messageCount(queue: String) throws(AMQPError) -> Int {
        let state = try live()
        let ok = withBytes(queue) { q in amqp_queue_declare(state, channel, q, 1, 0, 0, 0, amqp_empty_table) }
        try check("looking up queue '\(queue)'")
        return Int(ok?.pointee.message_count ?? 0)
    }

    /// `queue.purge`; returns how many messages were removed.
    @discardableResult
    public func purge(queue: String) throws(AMQPError) -> Int {
        let state = try live()
        let ok = withBytes(queue) { q in amqp_queue_purge(state, channel, q) }
        try check("purging queue '\(queue)'")
        return Int(ok?.pointee.message_count ?? 0)
    }

    // MARK: Consuming

    /// `basic.qos`: at most `count` unacknowledged deliveries per consumer started afterwards
    /// (`global: false`), or on the whole channel (`global: true`, RabbitMQ's meaning).
    public func qos(prefetchCount: Int, global: Bool) throws(AMQPError) {
        let state = try live()
        _ = amqp_basic_qos(state, channel, 0, UInt16(clamping: prefetchCount), global ? 1 : 0)
        try check("setting the prefetch count (basic.qos)")
    }

    /// `basic.consume`, with acknowledgements unless `noAck`.
    public func consume(queue: String, consumerTag: String, noAck: Bool = false) throws(AMQPError) {
        let state = try live()
        withBytes(queue) { q in withBytes(consumerTag) { t in _ = amqp_basic_consume(state, channel, q, t, 0, noAck ? 1 : 0, 0, amqp_empty_table) } }
        try check("consuming from queue '\(queue)'")
    }

    /// `basic.cancel`: the consumer stops; deliveries already sent may still arrive.
    public func cancel(consumerTag: String) throws(AMQPError) {
        let state = try live()
        withBytes(consumerTag) { t in _ = amqp_basic_cancel(state, channel, t) }
        try check("cancelling consumer '\(consumerTag)'")
    }

    /// `basic.ack` (with `multiple`, every delivery up to `tag`).
    public func ack(_ tag: UInt64, multiple: Bool = false) throws(AMQPError) {
        let state = try live()
        try checkStatus(amqp_basic_ack(state, channel, tag, multiple ? 1 : 0), "acknowledging a delivery")
    }

    /// `basic.reject`, giving the delivery back to its queue when `requeue`.
    public func reject(_ tag: UInt64, requeue: Bool) throws(AMQPError) {
        let state = try live()
        try checkStatus(amqp_basic_reject(state, channel, tag, requeue ? 1 : 0), "rejecting a delivery")
    }

    /// `basic.get`: one message or nil, unacknowledged (ack or reject it by its tag).
    public func get(queue: String) throws(AMQPError) -> AMQPIncoming? {
        let state = try live()
        amqp_maybe_release_buffers(state)
        let reply = withBytes(queue) { q in amqp_basic_get(state, channel, q, 0) }
        if reply.reply_type != AMQP_RESPONSE_NORMAL { throw fail(describe(reply, doing: "basic.get from '\(queue)'")) }
        guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD_ID, let decoded = reply.reply.decoded else { return nil }
        let ok = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        var message = amqp_message_t()
        let read = amqp_read_message(state, channel, &message, 0)
        if read.reply_type != AMQP_RESPONSE_NORMAL { throw fail(describe(read, doing: "reading a message from '\(queue)'")) }
        defer { amqp_destroy_message(&message) }
        return AMQPIncoming(consumerTag: "", deliveryTag: ok.delivery_tag, redelivered: ok.redelivered != 0, exchange: Self.string(ok.exchange),
                            routingKey: Self.string(ok.routing_key), properties: try Self.properties(message.properties),
                            body: Self.array(message.body))
    }

    /// What waiting for input produced.
    public enum Input {
        case delivery(AMQPIncoming)
        /// Nothing within the timeout (heartbeats were serviced).
        case timeout
        /// The broker cancelled a consumer (its queue was deleted): consume again after redeclaring.
        case cancelled(String)
    }

    /// Waits up to `timeout` seconds (0: only what is already readable) for a delivery,
    /// servicing heartbeats. Throws when the connection or channel is closed by the broker.
    public func next(timeout: Double) throws(AMQPError) -> Input {
        let state = try live()
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var tv = Self.timeval(max(0, timeout))
        let reply = amqp_consume_message(state, &envelope, &tv, 0)
        if reply.reply_type == AMQP_RESPONSE_NORMAL {
            defer { amqp_destroy_envelope(&envelope) }
            let props = try Self.properties(envelope.message.properties)
            return .delivery(AMQPIncoming(
                consumerTag: Self.string(envelope.consumer_tag), deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0,
                exchange: Self.string(envelope.exchange), routingKey: Self.string(envelope.routing_key), properties: props,
                body: Self.array(envelope.message.body)))
        }
        guard reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION else { throw fail(describe(reply, doing: "consuming")) }
        if reply.library_error == AMQP_STATUS_TIMEOUT.rawValue { return .timeout }
        guard reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue else {
            abandon()
            throw AMQPError("consuming failed: \(Self.statusText(reply.library_error))")
        }
        // A frame other than a delivery is waiting: read it.
        var frame = amqp_frame_t()
        var zero = Self.timeval(0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return .timeout }
        try checkStatus(status, "reading a frame")
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return .timeout }
        let id = frame.payload.method.id
        if id == fnhost_amqp_basic_cancel_method(), let decoded = frame.payload.method.decoded {
            let cancel = decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .cancelled(Self.string(cancel.consumer_tag))
        }
        if id == fnhost_amqp_channel_close_method() || id == fnhost_amqp_connection_close_method() {
            var fake = amqp_rpc_reply_t()
            fake.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION
            fake.reply = frame.payload.method
            throw fail(describe(fake, doing: "consuming"))
        }
        if id == fnhost_amqp_basic_return_method() {
            var message = amqp_message_t()
            let read = amqp_read_message(state, frame.channel, &message, 0)
            if read.reply_type == AMQP_RESPONSE_NORMAL { amqp_destroy_message(&message) }
        }
        return .timeout
    }

    // MARK: Publishing

    /// `basic.publish`. With confirms on, call `waitForConfirms` before counting it published.
    public func publish(exchange: String, routingKey: String, properties: AMQPProperties, body: [UInt8]) throws(AMQPError) {
        let state = try live()
        var status: Int32 = 0
        try Self.withProperties(properties) { props throws(AMQPError) in
            var p = props
            body.withUnsafeBytes { raw in
                let b = amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress))
                withBytes(exchange) { e in withBytes(routingKey) { r in status = amqp_basic_publish(state, channel, e, r, 0, 0, &p, b) } }
            }
        }
        try checkStatus(status, "publishing to '\(exchange.isEmpty ? routingKey : exchange)'")
        if confirming { publishSequence += 1 }
    }

    /// Waits until the broker has confirmed every message published so far (publisher
    /// confirms), up to `timeout` seconds. A negative confirm (`basic.nack`) throws.
    public func waitForConfirms(timeout: Double = 30) throws(AMQPError) {
        guard confirming else { return }
        let state = try live()
        let deadline = monotonicNowSeconds() + timeout
        while confirmedThrough < publishSequence {
            let left = deadline - monotonicNowSeconds()
            guard left > 0 else { abandon(); throw AMQPError("the broker did not confirm \(publishSequence - confirmedThrough) published message(s) within \(Int(timeout))s") }
            var frame = amqp_frame_t()
            var tv = Self.timeval(left)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &tv)
            if status == AMQP_STATUS_TIMEOUT.rawValue { continue }
            try checkStatus(status, "waiting for publisher confirms")
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            let id = frame.payload.method.id
            if id == fnhost_amqp_basic_ack_method(), let decoded = frame.payload.method.decoded {
                let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                confirmedThrough = max(confirmedThrough, ack.delivery_tag)
            } else if id == fnhost_amqp_basic_nack_method() {
                abandon()
                throw AMQPError("the broker refused (basic.nack) a published message")
            } else if id == fnhost_amqp_channel_close_method() || id == fnhost_amqp_connection_close_method() {
                var fake = amqp_rpc_reply_t()
                fake.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION
                fake.reply = frame.payload.method
                let error = describe(fake, doing: "publishing")
                abandon()
                throw error
            } else if id == fnhost_amqp_basic_return_method() {
                var message = amqp_message_t()
                let read = amqp_read_message(state, frame.channel, &message, 0)
                if read.reply_type == AMQP_RESPONSE_NORMAL { amqp_destroy_message(&message) }
            }
        }
    }

    /// Services heartbeats on an idle connection (sends one when due, reads what arrived).
    public func serviceHeartbeats() throws(AMQPError) {
        let state = try live()
        var frame = amqp_frame_t()
        var zero = Self.timeval(0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return }
        try checkStatus(status, "servicing heartbeats")
        if frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
            let id = frame.payload.method.id
            if id == fnhost_amqp_channel_close_method() || id == fnhost_amqp_connection_close_method() {
                var fake = amqp_rpc_reply_t()
                fake.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION
                fake.reply = frame.payload.method
                throw fail(describe(fake, doing: "idling"))
            }
        }
    }

    // MARK: Tables and properties

    private func withTable<T>(_ object: JSONObject, _ body: (amqp_table_t) throws(AMQPError) -> T) throws(AMQPError) -> T {
        if object.count == 0 { return try body(amqp_empty_table) }
        let encoded: [UInt8]
        do { encoded = try AMQPFieldTable.encode(object) } catch { throw AMQPError("cannot encode arguments: \(error)", connectionLost: false) }
        var pool = amqp_pool_t()
        init_amqp_pool(&pool, 4096)
        defer { empty_amqp_pool(&pool) }
        var table = amqp_table_t()
        var offset = 0
        let rc = encoded.withUnsafeBytes { raw in
            amqp_decode_table(amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)), &pool, &table, &offset)
        }
        guard rc == AMQP_STATUS_OK.rawValue else { throw AMQPError("cannot encode arguments: \(Self.statusText(rc))", connectionLost: false) }
        return try body(table)
    }

    static func withProperties(_ p: AMQPProperties, _ body: (amqp_basic_properties_t) throws(AMQPError) -> Void) throws(AMQPError) {
        var props = amqp_basic_properties_t()
        var flags: amqp_flags_t = 0
        var allocations: [UnsafeMutableRawPointer] = []
        defer { for p in allocations { free(p) } }
        func bytes(_ s: String) -> amqp_bytes_t {
            let u = Array(s.utf8)
            guard let p = malloc(max(1, u.count)) else { return amqp_empty_bytes }
            allocations.append(p)
            u.withUnsafeBytes { raw in if let base = raw.baseAddress { p.copyMemory(from: base, byteCount: u.count) } }
            return amqp_bytes_t(len: u.count, bytes: p)
        }
        if let v = p.contentType { props.content_type = bytes(v); flags |= fnhost_amqp_flag_content_type() }
        if let v = p.contentEncoding { props.content_encoding = bytes(v); flags |= fnhost_amqp_flag_content_encoding() }
        if let v = p.correlationId { props.correlation_id = bytes(v); flags |= fnhost_amqp_flag_correlation_id() }
        if let v = p.replyTo, !v.isEmpty { props.reply_to = bytes(v); flags |= fnhost_amqp_flag_reply_to() }
        if let v = p.expiration { props.expiration = bytes(v); flags |= fnhost_amqp_flag_expiration() }
        if let v = p.deliveryMode { props.delivery_mode = v; flags |= fnhost_amqp_flag_delivery_mode() }
        if let v = p.priority { props.priority = v; flags |= fnhost_amqp_flag_priority() }
        var pool = amqp_pool_t()
        init_amqp_pool(&pool, 4096)
        defer { empty_amqp_pool(&pool) }
        if let headers = p.headers {
            let encoded: [UInt8]
            do { encoded = try AMQPFieldTable.encode(headers) } catch { throw AMQPError("cannot encode message headers: \(error)", connectionLost: false) }
            var table = amqp_table_t()
            var offset = 0
            let rc = encoded.withUnsafeBytes { raw in
                amqp_decode_table(amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)), &pool, &table, &offset)
            }
            guard rc == AMQP_STATUS_OK.rawValue else { throw AMQPError("cannot encode message headers: \(statusText(rc))", connectionLost: false) }
            props.headers = table
            flags |= fnhost_amqp_flag_headers()
        }
        props._flags = flags
        try body(props)
    }

    static func properties(_ props: amqp_basic_properties_t) throws(AMQPError) -> AMQPProperties {
        var p = AMQPProperties()
        let flags = props._flags
        if flags & fnhost_amqp_flag_content_type() != 0 { p.contentType = string(props.content_type) }
        if flags & fnhost_amqp_flag_content_encoding() != 0 { p.contentEncoding = string(props.content_encoding) }
        if flags & fnhost_amqp_flag_correlation_id() != 0 { p.correlationId = string(props.correlation_id) }
        if flags & fnhost_amqp_flag_reply_to() != 0 { p.replyTo = string(props.reply_to) }
        if flags & fnhost_amqp_flag_expiration() != 0 { p.expiration = string(props.expiration) }
        if flags & fnhost_amqp_flag_delivery_mode() != 0 { p.deliveryMode = props.delivery_mode }
        if flags & fnhost_amqp_flag_priority() != 0 { p.priority = props.priority }
        if flags & fnhost_amqp_flag_headers() != 0 {
            do { p.headers = try json(props.headers, depth: 0) } catch { throw AMQPError("undecodable headers: \(error)", connectionLost: false) }
        }
        return p
    }
}

extension AMQPConnection {
    /// A decoded field table as JSON, read straight from rabbitmq-c's structures (no copy
    /// through the wire format). Kinds as in `AMQPFieldTable`.
    static func json(_ table: amqp_table_t, depth: Int) throws(AMQPFieldTable.Error) -> JSONObject {
        guard depth < AMQPFieldTable.maximumDepth else { throw .init(description: "field table nested deeper than \(AMQPFieldTable.maximumDepth)") }
        var entries: [(key: String, value: JSON)] = []
        entries.reserveCapacity(Int(table.num_entries))
        for i in 0..<Int(max(0, table.num_entries)) {
            let entry = table.entries[i]
            entries.append((key: string(entry.key), value: try json(entry.value, depth: depth)))
        }
        return JSONObject(entries)
    }

    static func json(_ field: amqp_field_value_t, depth: Int) throws(AMQPFieldTable.Error) -> JSON {
        let v = field.value
        switch field.kind {
        case UInt8(ascii: "t"): return .bool(v.boolean != 0)
        case UInt8(ascii: "b"): return .int(Int64(v.i8))
        case UInt8(ascii: "B"): return .int(Int64(v.u8))
        case UInt8(ascii: "s"): return .int(Int64(v.i16))
        case UInt8(ascii: "u"): return .int(Int64(v.u16))
        case UInt8(ascii: "I"): return .int(Int64(v.i32))
        case UInt8(ascii: "i"): return .int(Int64(v.u32))
        case UInt8(ascii: "l"): return .int(v.i64)
        case UInt8(ascii: "L"): return v.u64 <= UInt64(Int64.max) ? .int(Int64(v.u64)) : .uint(v.u64)
        case UInt8(ascii: "T"): return .int(Int64(bitPattern: v.u64))
        case UInt8(ascii: "f"): return .double(Double(v.f32))
        case UInt8(ascii: "d"): return .double(v.f64)
        case UInt8(ascii: "D"):
            var d = Double(Int32(bitPattern: v.decimal.value))
            for _ in 0..<v.decimal.decimals { d /= 10 }
            return .double(d)
        case UInt8(ascii: "S"), UInt8(ascii: "x"): return .string(string(v.bytes))
        case UInt8(ascii: "V"): return .null
        case UInt8(ascii: "F"): return .object(try json(v.table, depth: depth + 1))
        case UInt8(ascii: "A"):
            guard depth + 1 < AMQPFieldTable.maximumDepth else { throw .init(description: "field table nested deeper than \(AMQPFieldTable.maximumDepth)") }
            var items: [JSON] = []
            for i in 0..<Int(max(0, v.array.num_entries)) { items.append(try json(v.array.entries[i], depth: depth + 1)) }
            return .array(items)
        default: throw .init(description: "unknown field type 0x\(String(field.kind, radix: 16))")
        }
    }
}

/// Calls `body` with `string` as AMQP bytes (valid only during the call).
func withBytes<T>(_ string: String, _ body: (amqp_bytes_t) -> T) -> T {
    var s = string
    return s.withUTF8 { buf in body(amqp_bytes_t(len: buf.count, bytes: UnsafeMutableRawPointer(mutating: buf.baseAddress))) }
}

/// Seconds on the monotonic clock.
func monotonicNowSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let AMQP_BASIC_GET_OK_METHOD_ID: amqp_method_number_t = 0x003C_0047
