import FnHostCore
import Testing

@Suite struct ConnectionURLTests {
    @Test func maskHidesThePasswordOfEveryScheme() {
        #expect(ConnectionURL.mask("redis://:pw@host:6379/0") == "redis://:***@host:6379/0")
        #expect(ConnectionURL.mask("rediss://user:p%40ss@host/1?ssl_cert_reqs=required") == "rediss://user:***@host/1?ssl_cert_reqs=required")
        #expect(ConnectionURL.mask("amqp://guest:guest@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//")
        #expect(ConnectionURL.mask("amqps://u:a@b@host/vh") == "amqps://u:***@host/vh")
    }

    @Test func maskHidesAUserInformationWithoutColonWhole() {
        // redis-py reads redis://secret@host as the password.
        #expect(ConnectionURL.mask("redis://secret@host/0") == "redis://***@host/0")
    }

    @Test func maskLeavesURLsWithoutSecretsAlone() {
        #expect(ConnectionURL.mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0")
        #expect(ConnectionURL.mask("rpc://") == "rpc://")
        #expect(ConnectionURL.mask("redis://host/0?x=a@b") == "redis://host/0?x=a@b")
    }

    @Test func maskHidesPasswordQueryValues() {
        #expect(ConnectionURL.mask("rediss://host/0?ssl_keyfile_password=k&a=1") == "rediss://host/0?ssl_keyfile_password=***&a=1")
    }

    @Test func percentDecodeDecodesEscapes() {
        #expect(ConnectionURL.percentDecode("p%40ss%3Aw%2F") == "p@ss:w/")
        #expect(ConnectionURL.percentDecode("100%") == "100%")
    }

    @Test func tlsOptionsTakeCeleryAndRedisPyNames() throws {
        var tls = TLSOptions()
        try tls.set("ssl_ca_certs", to: "/ca.pem")
        try tls.set("certfile", to: "/c.pem")
        try tls.set("ssl_keyfile", to: "/k.pem")
        #expect(tls == TLSOptions(caCertificates: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        try tls.set("ssl_cert_reqs", to: "none")
        #expect(!tls.verifyPeer)
        try tls.set("cert_reqs", to: "CERT_REQUIRED")
        #expect(tls.verifyPeer)
        #expect(throws: TLSOptions.Error.self) { try tls.set("cert_reqs", to: "maybe") }
        #expect(throws: TLSOptions.Error.self) { try tls.set("ssl_ciphers", to: "x") }
    }
}
