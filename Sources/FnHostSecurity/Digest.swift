import CeleryProtocol
import COpenSSL

/// A signature digest named as Celery names it (`security_digest`: `sha256`, `sha512`,
/// `sha3_256`...; Celery looks the name up in `cryptography.hazmat.primitives.hashes`).
public struct Digest: @unchecked Sendable {
    /// The name as configured.
    public let name: String
    let md: OpaquePointer

    /// Throws `SecurityError` for a name OpenSSL does not know.
    public init(_ name: String) throws(SecurityError) {
        let openssl = name.lowercased().replacingUnderscores()
        guard let md = EVP_get_digestbyname(openssl) else {
            throw SecurityError("security_digest: unknown digest \(name) (use sha256, sha384, sha512...)")
        }
        self.name = name
        self.md = md
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(self.map { $0 == "_" ? "-" : $0 })
    }
}
