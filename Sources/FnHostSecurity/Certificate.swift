import CeleryProtocol
import COpenSSL

/// An X.509 certificate of a signer, as Celery's `celery.security.certificate.Certificate`:
/// identified by `id` (its issuer's attribute values joined by spaces, a space, its serial
/// number in decimal), able to verify RSA-PSS signatures made with its key.
///
/// Threading: immutable after init; `verify` may be called from any thread.
public final class Certificate: @unchecked Sendable {
    private let x509: OpaquePointer
    private let publicKey: OpaquePointer
    /// `Certificate.get_id()`: how signed messages name their signer.
    public let id: String
    /// Where it was read from (for messages).
    public let path: String

    /// Reads one PEM certificate. Only RSA keys are accepted, as in Celery.
    public init(pem: [UInt8], path: String) throws(SecurityError) {
        ERR_clear_error()
        let parsed: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        guard let x509 = parsed else {
            throw SecurityError("Invalid certificate: \(path) is not a PEM certificate (\(OpenSSLErrors.drain()))")
        }
        guard let key = X509_get0_pubkey(x509), EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            X509_free(x509)
            throw SecurityError("Invalid certificate: \(path): Non-RSA certificates are not supported.")
        }
        self.x509 = x509
        self.publicKey = key
        self.path = path
        self.id = Self.issuer(of: x509) + " " + Self.serial(of: x509)
    }

    deinit { X509_free(x509) }

    /// Whether its `notAfter` has passed (Celery: `now >= not_valid_after`).
    public var hasExpired: Bool {
        guard let notAfter = X509_get0_notAfter(x509) else { return true }
        return X509_cmp_current_time(notAfter) <= 0
    }

    /// Checks `signature` over `data`: RSA-PSS, MGF1 with `digest`, any salt length (Celery
    /// signs with the longest). Throws Celery's `Expired certificate` or `Bad signature`.
    public func verify(_ data: [UInt8], signature: [UInt8], digest: Digest) throws(SecurityError) {
        if hasExpired { throw SecurityError("Expired certificate: '\(id)'") }
        ERR_clear_error()
        guard let ctx = EVP_MD_CTX_new() else { throw SecurityError("Bad signature: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestVerifyInit(ctx, &pctx, digest.md, nil, publicKey) == 1, let pctx,
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1,
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest.md) == 1 else {
            throw SecurityError("Bad signature: cannot set up verification (\(OpenSSLErrors.drain()))")
        }
        let ok = data.withUnsafeBufferPointer { d in
            signature.withUnsafeBufferPointer { s in
                EVP_DigestVerify(ctx, s.baseAddress, s.count, d.baseAddress, d.count)
            }
        }
        ERR_clear_error()
        guard ok == 1 else { throw SecurityError("Bad signature: the signature of '\(id)' does not match the body") }
    }

    /// `' '.join(x.value for x in issuer)`: the issuer's attribute values, in order.
    private static func issuer(of x509: OpaquePointer) -> String {
        guard let name = X509_get_issuer_name(x509) else { return "" }
        var values: [String] = []
        for i in 0..<X509_NAME_entry_count(name) {
            guard let entry = X509_NAME_get_entry(name, i), let data = X509_NAME_ENTRY_get_data(entry) else { continue }
            var utf8: UnsafeMutablePointer<UInt8>?
            let n = ASN1_STRING_to_UTF8(&utf8, data)
            guard n >= 0, let utf8 else { continue }
            values.append(String(decoding: UnsafeBufferPointer(start: utf8, count: Int(n)), as: UTF8.self))
            fnhost_openssl_free(utf8)
        }
        return values.joined(separator: " ")
    }

    /// The serial number in decimal, as Python prints an int.
    private static func serial(of x509: OpaquePointer) -> String {
        guard let serial = X509_get0_serialNumber(x509), let bn = ASN1_INTEGER_to_BN(serial, nil) else { return "" }
        defer { BN_free(bn) }
        guard let text = BN_bn2dec(bn) else { return "" }
        defer { fnhost_openssl_free(text) }
        return String(cString: text)
    }
}
