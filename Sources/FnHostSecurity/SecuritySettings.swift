/// The message-signing settings, with Celery's names (`fnhost.yml`): what `setup_security`
/// reads on the Python side.
///
/// `description` never shows the key's password (nor, of course, the key's contents, which
/// are only read by `PrivateKey`).
public struct SecuritySettings: Sendable, CustomStringConvertible {
    /// `security_key`: path of the PEM private key (RSA) the host signs with.
    public var key: String
    /// `security_key_password`: the key's passphrase, if it is encrypted. Never logged.
    public var keyPassword: String?
    /// `security_certificate`: path of the PEM certificate of that key.
    public var certificate: String
    /// `security_cert_store`: a glob of PEM certificate files (or a directory: every file in
    /// it) whose signers are trusted.
    public var certStore: String
    /// `security_digest`: the digest of the signatures (`sha256`, Celery's default).
    public var digest: String

    public init(key: String, keyPassword: String? = nil, certificate: String, certStore: String, digest: String = "sha256") {
        self.key = key
        self.keyPassword = keyPassword
        self.certificate = certificate
        self.certStore = certStore
        self.digest = digest
    }

    public var description: String {
        "security_key=\(key) security_key_password=\(keyPassword == nil ? "(none)" : "********") security_certificate=\(certificate) security_cert_store=\(certStore) security_digest=\(digest)"
    }
}
