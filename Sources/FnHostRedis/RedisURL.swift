import FnHostCore

/// A Redis URL as Celery takes it: `redis://[[user]:password@]host[:port][/db]`, or
/// `rediss://` for TLS with redis-py's query options (`?ssl_cert_reqs=required&ssl_ca_certs=...`,
/// also `ssl_certfile`, `ssl_keyfile`), which `broker_use_ssl` / `redis_backend_use_ssl` add to.
///
/// `description` masks the password, so a URL can be logged. A `rediss://` URL always connects
/// with TLS, certificates checked unless `ssl_cert_reqs=none`; it never falls back to plaintext.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var db: Int
    public var username: String?
    public var password: String?
    /// Set for `rediss://`: the TLS settings (from the URL's query, then the configuration's).
    public var tls: TLSOptions?

    /// Why a URL was refused.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String = "127.0.0.1", port: Int = 6379, db: Int = 0, username: String? = nil, password: String? = nil,
                tls: TLSOptions? = nil) {
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Parses `text`; `tls` (Celery's `broker_use_ssl` or `redis_backend_use_ssl`) is the base
    /// the URL's own `ssl_*` query options are set over, for `rediss://` URLs. `unix://` is refused.
    public init(_ text: String, tls baseTLS: TLSOptions? = nil) throws(Error) {
        var tls: TLSOptions?
        var rest: Substring
        if text.hasPrefix("rediss://") {
            tls = baseTLS ?? TLSOptions()
            rest = Substring(text.dropFirst("rediss://".count))
        } else if text.hasPrefix("redis://") {
            rest = Substring(text.dropFirst("redis://".count))
        } else {
            throw Error(description: "not a redis:// or rediss:// URL: \(ConnectionURL.mask(text))")
        }
        if let q = rest.firstIndex(of: "?") {
            for (name, value) in ConnectionURL.queryItems(rest[rest.index(after: q)...]) where name.hasPrefix("ssl_") {
                guard tls != nil else { throw Error(description: "\(name) needs a rediss:// URL: \(ConnectionURL.mask(text))") }
                do { try tls!.set(name, to: value) } catch { throw Error(description: "\(error.description) in \(ConnectionURL.mask(text))") }
            }
            rest = rest[..<q]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                username = user.isEmpty ? nil : ConnectionURL.percentDecode(user)
                password = ConnectionURL.percentDecode(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                password = ConnectionURL.percentDecode(userinfo)
            }
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") , let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw Error(description: "invalid port in \(ConnectionURL.mask(text))") }
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
        var db = 0
        if !path.isEmpty {
            guard let n = Int(path), n >= 0 else { throw Error(description: "invalid database number '\(path)' in \(ConnectionURL.mask(text))") }
            db = n
        }
        self.init(host: host, port: port, db: db, username: username, password: password, tls: tls)
    }

    public var description: String {
        let auth = password != nil ? "\(username ?? ""):***@" : ""
        return "\(tls != nil ? "rediss" : "redis")://\(auth)\(host):\(port)/\(db)"
    }
}
