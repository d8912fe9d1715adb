import CeleryProtocol
import FnHostCore

/// Celery's `auth` serializer (`celery.security.serialization.SecureSerializer`) on the host:
/// verifies signed messages against the certificate store and signs what the host publishes
/// and stores with its own key and certificate.
///
/// Guarantees: a payload verifies only if its signer's certificate is in the store, has not
/// expired, and its RSA-PSS signature over the exact body bytes checks with the configured
/// digest; otherwise `verify` throws a `SecurityError` saying which. The key is held in memory
/// by `PrivateKey` only and never shown. Threading: immutable; any thread.
public struct SecureSerializer: MessageSigning, CustomStringConvertible {
    public let key: PrivateKey
    public let certificate: Certificate
    public let store: CertStore
    public let digest: Digest

    public init(key: PrivateKey, certificate: Certificate, store: CertStore, digest: Digest) {
        self.key = key
        self.certificate = certificate
        self.store = store
        self.digest = digest
    }

    /// Reads the key, the certificate and the store named by `settings`. Errors name the file
    /// and the reason, never key material.
    public init(_ settings: SecuritySettings) throws(SecurityError) {
        let digest = try Digest(settings.digest)
        let key = try PrivateKey(path: settings.key, password: settings.keyPassword)
        guard let pem = CertStore.read(settings.certificate) else {
            throw SecurityError("security_certificate: cannot read \(settings.certificate)")
        }
        let certificate = try Certificate(pem: pem, path: settings.certificate)
        let store = try CertStore(pattern: settings.certStore)
        self.init(key: key, certificate: certificate, store: store, digest: digest)
    }

    public var description: String {
        "auth serializer (signer '\(certificate.id)', digest \(digest.name), \(store.ids.count) trusted certificate(s))"
    }

    public func verify(_ payload: [UInt8]) throws(SecurityError) -> SecurePayload {
        let decoded = try SecurePayload.decode(payload)
        try store[decoded.signer].verify(decoded.body, signature: decoded.signature, digest: digest)
        return decoded
    }

    public func sign(_ body: [UInt8], contentType: String, contentEncoding: String) throws(SecurityError) -> [UInt8] {
        let signature = try key.sign(body, digest: digest)
        return SecurePayload(signer: certificate.id, signature: signature, innerContentType: contentType,
                             innerContentEncoding: contentEncoding, body: body).encoded()
    }
}
