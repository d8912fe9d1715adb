import CeleryProtocol
import COpenSSL

/// The host's signing key (`security_key`, decrypted with `security_key_password`), as Celery's
/// `celery.security.key.PrivateKey`: RSA only, signing with RSA-PSS, MGF1 with the digest and
/// the longest salt (`PSS.MAX_LENGTH`).
///
/// The key's bytes and its password are never part of an error, a log line or a description:
/// errors name the file and OpenSSL's reason only. The file and password buffers read are
/// zeroed once the key is parsed. Threading: immutable after init; `sign` from any thread.
public final class PrivateKey: @unchecked Sendable, CustomStringConvertible {
    private let key: OpaquePointer
    /// Where it was read from.
    public let path: String

    public init(path: String, password: String?) throws(SecurityError) {
        guard var pem = CertStore.read(path) else { throw SecurityError("security_key: cannot read \(path)") }
        var secret: [CChar]? = password.map { Array($0.utf8CString) }
        defer {
            for i in pem.indices { pem[i] = 0 }
            if secret != nil { for i in secret!.indices { secret![i] = 0 } }
        }
        ERR_clear_error()
        let parsed: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            if secret == nil { return fnhost_read_private_key(bio, nil) }
            return secret!.withUnsafeBufferPointer { fnhost_read_private_key(bio, $0.baseAddress) }
        }
        guard let key = parsed else {
            let why = OpenSSLErrors.drain()
            let hint = password == nil ? " (if the key is encrypted, set security_key_password)" : " (is security_key_password right?)"
            throw SecurityError("Invalid private key: \(path) cannot be read as a PEM private key: \(why)\(hint)")
        }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw SecurityError("Invalid private key: \(path): Non-RSA keys are not supported.")
        }
        self.key = key
        self.path = path
    }

    deinit { EVP_PKEY_free(key) }

    public var description: String { "PrivateKey(\(path))" }

    /// The RSA-PSS signature of `data`.
    public func sign(_ data: [UInt8], digest: Digest) throws(SecurityError) -> [UInt8] {
        ERR_clear_error()
        guard let ctx = EVP_MD_CTX_new() else { throw SecurityError("Unable to sign data: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestSignInit(ctx, &pctx, digest.md, nil, key) == 1, let pctx,
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) == 1,
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest.md) == 1 else {
            throw SecurityError("Unable to sign data: \(OpenSSLErrors.drain())")
        }
        var length = 0
        let sized = data.withUnsafeBufferPointer { EVP_DigestSign(ctx, nil, &length, $0.baseAddress, $0.count) }
        guard sized == 1 else { throw SecurityError("Unable to sign data: \(OpenSSLErrors.drain())") }
        var signature = [UInt8](repeating: 0, count: length)
        let signed = data.withUnsafeBufferPointer { d in
            signature.withUnsafeMutableBufferPointer { EVP_DigestSign(ctx, $0.baseAddress, &length, d.baseAddress, d.count) }
        }
        guard signed == 1 else { throw SecurityError("Unable to sign data: \(OpenSSLErrors.drain())") }
        return Array(signature.prefix(length))
    }
}
