import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz` on `--metrics-port`.
///
/// One thread accepts and answers connections one at a time (GET/HEAD, `Connection: close`),
/// which is all Prometheus scrapes and Kubernetes probes need; a client gets 5 seconds to send
/// its request line. It never runs task work and never blocks the host: a handler reads
/// counters and asks the broker for queue lengths over a connection of its own.
///
/// fnhost hand-writes this rather than building on swift-nio: the host is thread-based around
/// blocking C clients, and NIO's event loops would add minutes to every build for three routes.
///
/// Threading: `start` once; `stop` from any thread returns after the accept thread has ended.
public final class MetricsServer: @unchecked Sendable {
    /// A route's answer.
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public typealias Handler = @Sendable (_ path: String) -> Response

    private let host: String
    private let handler: Handler
    private let logger: Logger
    private let lock = ConditionLock()
    private var fd: Int32 = -1
    private var stopping = false
    private var thread: JoinableThread?
    /// The port bound (the requested one, or the one chosen for port 0).
    public private(set) var port: Int

    public init(host: String = "0.0.0.0", port: Int, logger: Logger, handler: @escaping Handler) {
        self.host = host
        self.port = port
        self.logger = logger
        self.handler = handler
    }

    /// Binds and starts serving; throws a message a user can act on when the port is taken.
    public func start() throws(ControlError) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw ControlError("cannot create a socket for the metrics server: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            close(s)
            throw ControlError("invalid metrics bind address \(host)")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(s, 64) == 0 else {
            let e = errno
            close(s)
            throw ControlError("cannot listen on \(host):\(port) for /metrics: \(String(cString: strerror(e)))")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        lock.withLock { fd = s }
        let t = startThread(name: "fnhost-metrics") { [self] in acceptLoop(s) }
        lock.withLock { thread = t }
    }

    /// Stops accepting and closes the socket.
    public func stop() {
        let t = lock.withLock { () -> JoinableThread? in
            stopping = true
            return thread
        }
        t?.join()
        lock.withLock {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    private func acceptLoop(_ listener: Int32) {
        while !lock.withLock({ stopping }) {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 250) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            serve(client)
            close(client)
        }
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Read the request head (up to 16 KiB); the body, if any, is ignored.
        while request.count < 16_384 {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request += buffer[0..<n]
            if Self.headComplete(request) { break }
        }
        guard let lineEnd = request.firstIndex(of: UInt8(ascii: "\r")) ?? request.firstIndex(of: UInt8(ascii: "\n")) else { return }
        let parts = String(decoding: request[..<lineEnd], as: UTF8.self).split(separator: " ")
        var response: Response
        var head = false
        if parts.count >= 2, parts[0] == "GET" || parts[0] == "HEAD" {
            head = parts[0] == "HEAD"
            let target = String(parts[1])
            let path = String(target.prefix { $0 != "?" })
            response = handler(path)
        } else {
            response = Response(status: 405, body: "only GET and HEAD are served\n")
        }
        let body = Array(response.body.utf8)
        var out = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        out += "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var bytes = Array(out.utf8)
        if !head { bytes += body }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
    }

    static func headComplete(_ bytes: [UInt8]) -> Bool {
        let crlf: [UInt8] = [13, 10, 13, 10]
        if bytes.count >= 4 {
            for i in 0...(bytes.count - 4) where Array(bytes[i..<(i + 4)]) == crlf { return true }
        }
        return bytes.count >= 2 && bytes.suffix(2) == [10, 10]
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
