import FnHostCore
import FnHostSecurity

extension HostRuntime {
    /// Reads the signing key, certificate and store when signing is configured. A key or
    /// certificate that cannot be read stops the host before it consumes anything (it would
    /// otherwise refuse every message); errors name files and reasons, never key material.
    func loadSigning() throws -> (any MessageSigning)? {
        guard let security = settings.security else { return nil }
        let serializer: SecureSerializer
        do { serializer = try SecureSerializer(security) } catch {
            throw FnHostError("message signing: \(error.reason)")
        }
        for certificate in serializer.store.expired {
            logger.warning("message signing: certificate '\(certificate.id)' (\(certificate.path)) has expired; messages it signs are refused")
        }
        if serializer.certificate.hasExpired {
            logger.warning("message signing: this host's own certificate '\(serializer.certificate.id)' has expired; what it signs will be refused")
        }
        logger.info("message signing: only signed messages run (\(serializer)); results \(settings.signResults ? "signed (result_serializer: auth)" : "in JSON (result_serializer: json)")")
        return serializer
    }
}
