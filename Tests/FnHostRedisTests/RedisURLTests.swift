import FnHostCore
import FnHostRedis
import Testing

@Suite struct RedisURLTests {
    @Test func redissIsTLSWithChecksOnByDefault() throws {
        let url = try RedisURL("rediss://:pw@redis.example:6380/2")
        #expect(url.tls == TLSOptions())
        #expect(url.tls?.verifyPeer == true)
        #expect(url.host == "redis.example" && url.port == 6380 && url.db == 2 && url.password == "pw")
        #expect(url.description == "rediss://:***@redis.example:6380/2")
    }

    @Test func theQueryFormCeleryAcceptsSetsTheTLSOptions() throws {
        let url = try RedisURL("rediss://h/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca%20dir/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem")
        #expect(url.tls == TLSOptions(caCertificates: "/etc/ca dir/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem", verifyPeer: true))
        #expect(try RedisURL("rediss://h/0?ssl_cert_reqs=CERT_NONE").tls?.verifyPeer == false)
    }

    @Test func theURLQueryBeatsTheUseSSLSetting() throws {
        let base = TLSOptions(caCertificates: "/base.pem", certificateFile: "/client.pem", keyFile: "/client.key")
        let url = try RedisURL("rediss://h/0?ssl_ca_certs=/url.pem", tls: base)
        #expect(url.tls?.caCertificates == "/url.pem")
        #expect(url.tls?.certificateFile == "/client.pem")
        // broker_use_ssl alone never turns a redis:// URL into TLS.
        #expect(try RedisURL("redis://h/0", tls: base).tls == nil)
    }

    @Test func refusalsNameTheProblemWithThePasswordMasked() {
        #expect { try RedisURL("redis://:topsecret@h/0?ssl_cert_reqs=none") } throws: { error in
            "\(error)".contains("needs a rediss://") && !"\(error)".contains("topsecret")
        }
        #expect { try RedisURL("rediss://:topsecret@h/0?ssl_cert_reqs=maybe") } throws: { error in
            "\(error)".contains("cert_reqs") && !"\(error)".contains("topsecret")
        }
        #expect { try RedisURL("unix://:topsecret@/tmp/redis.sock") } throws: { error in
            !"\(error)".contains("topsecret")
        }
    }
}
