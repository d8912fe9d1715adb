import COpenSSL
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// One connected byte stream to a Redis server: a TCP socket, with OpenSSL over it for
/// `rediss://`. hiredis's reader and formatter run on top (see `RedisConnection`).
///
/// Guarantees: a TLS socket is either verified as its `TLSOptions` ask (certificate chain to
/// `ca_certs` and the host name, by default) or not returned at all; there is no fallback to
/// plaintext. Descriptors are close-on-exec, so no worker process inherits one.
/// Not thread-safe: owned by one `RedisConnection`.
final class RedisSocket {
    /// Why a connection could not be made or broke; `description` never holds a secret.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        /// The read timed out (the connection is still dropped: a reply may be half read).
        var timedOut = false
    }

    private(set) var fd: Int32
    private var ssl: OpaquePointer?
    private var context: OpaquePointer?

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Connects to `host:port` within `timeout` seconds; with `tls`, completes a verified TLS
    /// handshake before returning.
    static func connect(host: String, port: Int, timeout: Double, tls: TLSOptions?) throws(Failure) -> RedisSocket {
        let socket = RedisSocket(fd: try openTCP(host: host, port: port, timeout: timeout))
        socket.setTimeouts(read: timeout, write: timeout)
        if let tls {
            do { try socket.startTLS(host: host, port: port, options: tls) } catch {
                socket.close()
                throw error
            }
        }
        return socket
    }

    private static func openTCP(host: String, port: Int, timeout: Double) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let list else { throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let ai = entry {
            entry = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            ai.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, Int32(timeout * 1000))
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if ready <= 0 || soError != 0 {
                lastError = ready == 0 ? "Connection timed out" : String(cString: strerror(soError != 0 ? soError : errno))
                Glibc.close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw Failure(description: lastError)
    }

    private func startTLS(host: String, port: Int, options: TLSOptions) throws(Failure) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw Failure(description: "cannot create a TLS context: \(Self.sslErrors())") }
        self.context = context
        _ = fnhost_ssl_ctx_set_min_tls12(context)
        if options.verifyPeer {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let ca = options.caCertificates {
                guard SSL_CTX_load_verify_locations(context, ca, nil) == 1 else {
                    throw Failure(description: "ssl_ca_certs: cannot read the CA bundle \(ca): \(Self.sslErrors())")
                }
            } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                throw Failure(description: "cannot load the system's CA certificates: \(Self.sslErrors())")
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        if let cert = options.certificateFile {
            guard let key = options.keyFile else { throw Failure(description: "ssl_certfile \(cert) needs ssl_keyfile") }
            guard SSL_CTX_use_certificate_chain_file(context, cert) == 1 else {
                throw Failure(description: "ssl_certfile: cannot read the certificate \(cert): \(Self.sslErrors())")
            }
            // OpenSSL's messages name the file and the reason, never the key's bytes.
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw Failure(description: "ssl_keyfile: cannot use the key \(key): \(Self.sslErrors())")
            }
        }
        guard let ssl = SSL_new(context) else { throw Failure(description: "cannot create a TLS session: \(Self.sslErrors())") }
        self.ssl = ssl
        _ = fnhost_ssl_clear_auto_retry(ssl)
        let name = options.serverHostname ?? host
        var address = in6_addr()
        let isAddress = inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
        if isAddress {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
        } else {
            _ = fnhost_ssl_set_sni(ssl, name)
            if options.verifyPeer { SSL_set1_host(ssl, name) }
        }
        SSL_set_fd(ssl, fd)
        ERR_clear_error()
        while true {
            let rc = SSL_connect(ssl)
            if rc == 1 { return }
            let code = SSL_get_error(ssl, rc)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE, errno != EAGAIN, errno != EWOULDBLOCK { continue }
            let verify = SSL_get_verify_result(ssl)
            var reason: String
            if verify != X509_V_OK {
                reason = "certificate verify failed: \(String(cString: X509_verify_cert_error_string(verify)))"
                reason += " (is the server's certificate signed by the CA in ssl_ca_certs"
                reason += options.caCertificates.map { " = \($0)" } ?? " (the system's CAs)"
                reason += ", and does it name \(name)?)"
            } else {
                let detail = Self.sslErrors()
                reason = detail.isEmpty ? (errno != 0 ? String(cString: strerror(errno)) : "the server closed the connection") : detail
            }
            throw Failure(description: "TLS handshake with \(host):\(port) failed: \(reason)")
        }
    }

    /// The socket's read and write timeouts (a blocking command's own timeout must be shorter).
    func setTimeouts(read: Double, write: Double? = nil) {
        for (option, seconds) in [(SO_RCVTIMEO, read), (SO_SNDTIMEO, write)] {
            guard let seconds else { continue }
            var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
            setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Writes every byte, or throws.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n: Int
            let base = bytes.baseAddress! + offset
            if let ssl {
                ERR_clear_error()
                let rc = SSL_write(ssl, base, Int32(min(bytes.count - offset, Int(Int32.max))))
                if rc <= 0 {
                    let code = SSL_get_error(ssl, rc)
                    if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE, errno != EAGAIN, errno != EWOULDBLOCK { continue }
                    throw Failure(description: failureText(code))
                }
                n = Int(rc)
            } else {
                n = send(fd, base, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(description: String(cString: strerror(errno)))
                }
            }
            offset += n
        }
    }

    /// Reads what is available (at least one byte), blocking up to the read timeout. With
    /// `once`, returns 0 instead of waiting when TLS had only records of its own to process
    /// (a TLS 1.3 session ticket). A closed connection or a timeout throws.
    func read(into buffer: UnsafeMutableRawBufferPointer, once: Bool = false) throws -> Int {
        while true {
            if let ssl {
                ERR_clear_error()
                errno = 0
                let rc = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
                if rc > 0 { return Int(rc) }
                let code = SSL_get_error(ssl, rc)
                if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
                    if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "read timed out", timedOut: true) }
                    if once { return 0 }
                    continue
                }
                if code == SSL_ERROR_ZERO_RETURN { throw Failure(description: "the server closed the connection") }
                throw Failure(description: failureText(code))
            }
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return n }
            if n == 0 { throw Failure(description: "the server closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "read timed out", timedOut: true) }
            throw Failure(description: String(cString: strerror(errno)))
        }
    }

    /// Bytes TLS has already decrypted and holds: poll(2) on the socket cannot see them.
    var hasBufferedData: Bool {
        guard let ssl else { return false }
        return SSL_pending(ssl) > 0
    }

    /// Closes the socket (after a TLS close_notify when possible).
    func close() {
        if let ssl {
            SSL_shutdown(ssl)
            SSL_free(ssl)
            self.ssl = nil
        }
        if let context {
            SSL_CTX_free(context)
            self.context = nil
        }
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func failureText(_ code: Int32) -> String {
        let detail = Self.sslErrors()
        if !detail.isEmpty { return "TLS error: \(detail)" }
        if code == SSL_ERROR_SYSCALL { return errno != 0 ? String(cString: strerror(errno)) : "the server closed the connection" }
        return "TLS error \(code)"
    }

    /// OpenSSL's queued error messages, oldest first, emptying the queue.
    private static func sslErrors() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.joined(separator: "; ")
    }
}
