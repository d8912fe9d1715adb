import FnHostSecurity

/// The message-signing settings of `fnhost.yml`, with Celery's names, and what they turn on.
///
/// Signing is on when `security_key`, `security_certificate` and `security_cert_store` are set
/// (all three, as Celery's `setup_security` requires): the host then accepts only messages
/// signed by a certificate of the store (`task_serializer: auth`, `accept_content: [auth]`),
/// signs every task message it publishes, and signs its results unless `result_serializer:
/// json` (a producer that ran `setup_security` accepts only `auth` results, since
/// `result_accept_content` falls back to `accept_content`).
struct SecurityConfig {
    var key: String?
    var keyPassword: String?
    var certificate: String?
    var certStore: String?
    var digest: String?
    var taskSerializer: String?
    var resultSerializer: String?

    mutating func set(_ name: String, _ value: String, fail: (String, String) -> ConfigFile.Error) throws(ConfigFile.Error) {
        switch name {
        case "security_key": key = value
        case "security_key_password": keyPassword = value
        case "security_certificate": certificate = value
        case "security_cert_store": certStore = value
        case "security_digest": digest = value
        case "task_serializer", "result_serializer":
            guard value == "json" || value == "auth" else {
                throw fail(name, "must be json or auth (fnhost never deserializes pickle, yaml or msgpack)")
            }
            if name == "task_serializer" { taskSerializer = value } else { resultSerializer = value }
        default: break
        }
    }

    /// What is turned on: nil without signing. Throws when the settings are incomplete or
    /// contradict each other.
    func resolved() throws(ConfigFile.Error) -> (settings: SecuritySettings, signResults: Bool)? {
        let given = [key, certificate, certStore].compactMap { $0 }.count
        guard given > 0 || taskSerializer == "auth" || resultSerializer == "auth" || keyPassword != nil || digest != nil else { return nil }
        guard let key, let certificate, let certStore else {
            throw ConfigFile.Error(description: "message signing needs security_key, security_certificate and security_cert_store (all three, as Celery's setup_security)")
        }
        if taskSerializer == "json" {
            throw ConfigFile.Error(description: "task_serializer: json with security_* settings: signing needs task_serializer: auth (or leave it out)")
        }
        return (SecuritySettings(key: key, keyPassword: keyPassword, certificate: certificate, certStore: certStore, digest: digest ?? "sha256"),
                resultSerializer != "json")
    }
}
