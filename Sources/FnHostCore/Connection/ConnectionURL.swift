/// What every broker and backend URL shares, whatever its scheme: the password in its user
/// information is a secret.
///
/// `mask` is the one place a URL is made safe to show: logs, errors, `inspect conf` and CLI
/// output all go through it (or through a parsed URL's `description`, which masks the same way).
public enum ConnectionURL {
    /// `text` with the password replaced by `***` (`redis://:***@host`, `amqp://user:***@host`);
    /// a user information without a colon is masked whole (redis-py reads it as the password).
    /// Query values that name secrets (`password`, `ssl_keyfile_password`...) are masked too.
    public static func mask(_ text: String) -> String {
        var chars = Array(text)
        if let s = (0..<max(0, chars.count - 2)).first(where: { chars[$0] == ":" && chars[$0 + 1] == "/" && chars[$0 + 2] == "/" }) {
            let authorityEnd = chars[(s + 3)...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? chars.count
            if let at = chars[(s + 3)..<authorityEnd].lastIndex(of: "@") {
                let userinfo = chars[(s + 3)..<at]
                if let colon = userinfo.firstIndex(of: ":") {
                    chars = Array(chars[...colon]) + Array("***") + Array(chars[at...])
                } else if !userinfo.isEmpty {
                    chars = Array(chars[..<(s + 3)]) + Array("***") + Array(chars[at...])
                }
            }
        }
        guard let q = chars.firstIndex(of: "?") else { return String(chars) }
        let query = String(chars[(q + 1)...]).split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0].lowercased().contains("password") else { return String(pair) }
            return "\(kv[0])=***"
        }
        return String(chars[...q]) + query.joined(separator: "&")
    }

    /// Decodes `%XX` escapes (a password may hold `@`, `:` or `/` written as `%40`, `%3A`, `%2F`).
    public static func percentDecode(_ s: Substring) -> String {
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

    /// The `key=value` pairs of a URL's query, decoded, in order.
    public static func queryItems(_ query: Substring) -> [(name: String, value: String)] {
        query.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (percentDecode(kv[0]), kv.count == 2 ? percentDecode(kv[1]) : "")
        }
    }
}
