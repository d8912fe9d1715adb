/// The TLS settings of a broker or result backend connection, with Python's names: Celery's
/// `broker_use_ssl` and `redis_backend_use_ssl` (`ca_certs` / `ssl_ca_certs`, `certfile` /
/// `ssl_certfile`, `keyfile` / `ssl_keyfile`, `cert_reqs` / `ssl_cert_reqs`), or a `rediss://`
/// URL's query (`?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem`).
///
/// Certificate checks are on by default: the server's certificate must chain to `ca_certs` (the
/// system's CAs when nil) and name the host connected to. Only `cert_reqs: CERT_NONE` turns them
/// off. A connection that asked for TLS never falls back to plaintext.
public struct TLSOptions: Sendable, Equatable {
    /// `ca_certs`: the CA bundle the server's certificate must chain to (system default when nil).
    public var caCertificates: String?
    /// `certfile`: a client certificate, for mutual TLS (with `keyFile`).
    public var certificateFile: String?
    /// `keyfile`: the client certificate's private key. Only its path is ever shown, never its contents.
    public var keyFile: String?
    /// `cert_reqs`: verify the server's certificate and host name (`CERT_REQUIRED`, the default).
    public var verifyPeer: Bool
    /// `server_hostname`: the name to check the certificate against (the URL's host by default).
    public var serverHostname: String?

    public init(caCertificates: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool = true,
                serverHostname: String? = nil) {
        self.caCertificates = caCertificates
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.serverHostname = serverHostname
    }

    /// Why a TLS option was refused.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// Sets one option by its Python name, with or without redis-py's `ssl_` prefix
    /// (`ca_certs`, `ssl_ca_certs`, ...). `cert_reqs` takes `CERT_REQUIRED`/`required`,
    /// `CERT_OPTIONAL`/`optional` (checked as required: fnhost never accepts an unverified
    /// certificate it was told to check) and `CERT_NONE`/`none`, or Python's numbers 2, 1, 0.
    public mutating func set(_ name: String, to value: String) throws(Error) {
        let key = name.hasPrefix("ssl_") ? String(name.dropFirst(4)) : name
        switch key {
        case "ca_certs": caCertificates = value
        case "certfile": certificateFile = value
        case "keyfile": keyFile = value
        case "server_hostname": serverHostname = value
        case "cert_reqs":
            switch value.hasPrefix("ssl.") ? String(value.dropFirst(4)) : value {
            case "CERT_REQUIRED", "required", "2", "CERT_OPTIONAL", "optional", "1": verifyPeer = true
            case "CERT_NONE", "none", "0": verifyPeer = false
            default: throw Error(description: "cert_reqs must be CERT_REQUIRED, CERT_OPTIONAL or CERT_NONE, not '\(value)'")
            }
        case "check_hostname":
            // redis-py's ssl_check_hostname: fnhost always checks the host name when it checks the certificate.
            break
        default:
            throw Error(description: "unknown TLS option '\(name)' (fnhost takes ca_certs, certfile, keyfile, cert_reqs, server_hostname)")
        }
    }
}
