import CeleryProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Celery's `FSCertStore`: the certificates whose signers are trusted, read from
/// `security_cert_store` (a glob of PEM files, or a directory: every file in it), by id.
///
/// Unlike Celery, an expired certificate does not stop the host from starting: it is kept, so
/// that a message it signed is refused with `Expired certificate: '<id>'` (the check is made
/// at every verification, as Celery's is too), and `expired` lists it for a warning.
public struct CertStore: Sendable {
    private var certificates: [String: Certificate] = [:]

    /// Ids of the certificates read.
    public var ids: [String] { certificates.keys.sorted() }
    /// Certificates already expired when read.
    public private(set) var expired: [Certificate] = []

    /// Reads every file `pattern` matches. Throws for an unreadable or invalid certificate, a
    /// duplicate id (`Duplicate certificate`) or a pattern that matches nothing.
    public init(pattern: String) throws(SecurityError) {
        var expanded = pattern
        var info = stat()
        if stat(pattern, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { expanded = pattern.hasSuffix("/") ? pattern + "*" : pattern + "/*" }
        var matches = glob_t()
        defer { globfree(&matches) }
        guard Glibc.glob(expanded, 0, nil, &matches) == 0, matches.gl_pathc > 0 else {
            throw SecurityError("security_cert_store: no certificate matches \(pattern)")
        }
        for i in 0..<Int(matches.gl_pathc) {
            guard let p = matches.gl_pathv[i] else { continue }
            let path = String(cString: p)
            guard let pem = Self.read(path) else { throw SecurityError("security_cert_store: cannot read \(path)") }
            let certificate = try Certificate(pem: pem, path: path)
            guard certificates[certificate.id] == nil else { throw SecurityError("Duplicate certificate: '\(certificate.id)' (\(path))") }
            certificates[certificate.id] = certificate
            if certificate.hasExpired { expired.append(certificate) }
        }
    }

    /// The certificate `id` names; Celery's `Unknown certificate` otherwise.
    public subscript(id: String) -> Certificate {
        get throws(SecurityError) {
            guard let certificate = certificates[id] else { throw SecurityError("Unknown certificate: '\(Self.printable(id))'") }
            return certificate
        }
    }

    /// An id a message claims, fit for a log line and a dead-letter reason: at most 200
    /// characters, control characters and quotes escaped (it is the sender's text).
    static func printable(_ id: String) -> String {
        var out = ""
        for scalar in id.unicodeScalars.prefix(200) {
            switch scalar.value {
            case 0..<0x20, 0x7F: out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            case 0x27, 0x5C: out += "\\" + String(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 1 << 20 { return nil }
        }
        return bytes
    }
}
