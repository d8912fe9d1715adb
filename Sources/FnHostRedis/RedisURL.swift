/// A Redis URL as Celery takes it: `redis://[[user]:password@]host[:port][/db]`.
///
/// `description` masks the password, so a URL can be logged.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var db: Int
    public var username: String?
    public var password: String?

    /// Why a URL was refused.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String = "127.0.0.1", port: Int = 6379, db: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
    }

    /// Parses `text`. `rediss://` (TLS) and `unix://` are refused with a clear message for now.
    public init(_ text: String) throws(Error) {
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") { throw Error(description: "rediss:// (TLS) is not supported yet; use redis:// on a trusted network") }
            throw Error(description: "not a redis:// URL: \(Self.mask(text))")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        if let q = rest.firstIndex(of: "?") { rest = rest[..<q] }
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
                username = user.isEmpty ? nil : Self.percentDecode(user)
                password = Self.percentDecode(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                password = Self.percentDecode(userinfo)
            }
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") , let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw Error(description: "invalid port in \(Self.mask(text))") }
                port = p
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw Error(description: "invalid port in \(Self.mask(text))")
            }
            port = p
            host = String(host[..<colon])
        }
        if host.isEmpty { host = "127.0.0.1" }
        var db = 0
        if !path.isEmpty {
            guard let n = Int(path), n >= 0 else { throw Error(description: "invalid database number '\(path)' in \(Self.mask(text))") }
            db = n
        }
        self.init(host: host, port: port, db: db, username: username, password: password)
    }

    public var description: String {
        let auth = password != nil ? "\(username ?? ""):***@" : ""
        return "redis://\(auth)\(host):\(port)/\(db)"
    }

    /// `text` with any password replaced by `***`, for error messages.
    public static func mask(_ text: String) -> String {
        let chars = Array(text)
        guard let s = (0..<max(0, chars.count - 2)).first(where: { chars[$0] == ":" && chars[$0 + 1] == "/" && chars[$0 + 2] == "/" }),
            let at = chars.lastIndex(of: "@"), at > s + 3
        else { return text }
        let userinfo = chars[(s + 3)..<at]
        if let colon = userinfo.firstIndex(of: ":") {
            return String(chars[..<colon]) + ":***" + String(chars[at...])
        }
        return String(chars[..<(s + 3)]) + "***" + String(chars[at...])
    }

    static func percentDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
