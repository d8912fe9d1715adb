import FnHostCore

/// An AMQP URL as Celery takes it: `amqp://[user[:password]@]host[:port][/vhost][?heartbeat=N]`,
/// `amqps://` for TLS. `pyamqp://` and `librabbitmq://` (Celery's aliases) mean `amqp://`.
///
/// As in kombu, user and password default to `guest`, the port to 5672 (5671 for amqps), and
/// an empty virtual host or `//` to `/`. `description` masks the password, so a URL can be logged.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var virtualHost: String
    public var username: String
    public var password: String
    /// `amqps://`: TLS (with `broker_use_ssl`'s options).
    public var useTLS: Bool
    /// `?heartbeat=N` from the URL, which `broker_heartbeat` yields to.
    public var heartbeat: Int?

    /// Why a URL was refused.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String = "127.0.0.1", port: Int? = nil, virtualHost: String = "/", username: String = "guest",
                password: String = "guest", useTLS: Bool = false, heartbeat: Int? = nil) {
        self.host = host
        self.port = port ?? (useTLS ? 5671 : 5672)
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.useTLS = useTLS
        self.heartbeat = heartbeat
    }

    /// True when `text` names an AMQP broker (any of the schemes this type parses).
    public static func isAMQP(_ text: String) -> Bool {
        ["amqp://", "amqps://", "pyamqp://", "librabbitmq://"].contains { text.hasPrefix($0) }
    }

    public init(_ text: String) throws(Error) {
        var tls = false
        var rest: Substring
        if text.hasPrefix("amqps://") {
            tls = true
            rest = text.dropFirst("amqps://".count)
        } else if let scheme = ["amqp://", "pyamqp://", "librabbitmq://"].first(where: { text.hasPrefix($0) }) {
            rest = text.dropFirst(scheme.count)
        } else {
            throw Error(description: "not an amqp:// or amqps:// URL: \(ConnectionURL.mask(text))")
        }
        var heartbeat: Int?
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == "heartbeat" {
                    guard let n = Int(kv[1]), n >= 0 else { throw Error(description: "invalid heartbeat '\(kv[1])' in \(ConnectionURL.mask(text))") }
                    heartbeat = n
                }
            }
            rest = rest[..<q]
        }
        var vhost = "/"
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty && path != "/" { vhost = ConnectionURL.percentDecode(path) }
            rest = rest[..<slash]
        }
        var username = "guest"
        var password = "guest"
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                username = ConnectionURL.percentDecode(userinfo[..<colon])
                password = ConnectionURL.percentDecode(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                username = ConnectionURL.percentDecode(userinfo)
            }
        }
        var host = String(rest)
        var port: Int?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw Error(description: "invalid port in \(ConnectionURL.mask(text))") }
                port = p
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw Error(description: "invalid port in \(ConnectionURL.mask(text))")
            }
            port = p
            host = String(host[..<colon])
        }
        if host.isEmpty { host = "127.0.0.1" }
        self.init(host: host, port: port, virtualHost: vhost, username: username, password: password, useTLS: tls, heartbeat: heartbeat)
    }

    public var description: String {
        let vhost = virtualHost == "/" ? "/" : "/" + virtualHost
        return "\(useTLS ? "amqps" : "amqp")://\(username):***@\(host):\(port)\(vhost)"
    }
}
