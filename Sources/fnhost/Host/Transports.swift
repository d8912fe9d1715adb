import CeleryProtocol
import FnHostAMQP
import FnHostCore
import FnHostRedis
import Logging

/// The broker and result backend `fnhost serve` talks to, chosen by URL scheme: `redis://` or
/// `amqp://`/`amqps://` brokers; `redis://` or `rpc://` backends (rpc:// needs an AMQP broker).
struct Transports {
    /// Settings only AMQP uses.
    struct AMQPSettings {
        var heartbeat = 120
        var tls = TLSOptions()
        var topology = AMQPTopology()
        var resultPersistent = false
    }

    let broker: any Broker
    let backend: any ResultBackend
    /// Set on Redis: the visibility-timeout restore and the delayed-store mover run against it.
    let redisBroker: RedisBroker?
    /// Set on RabbitMQ: takes the dispatcher's prefetch windows.
    let amqpBroker: AMQPBroker?
    /// Celery events and remote control, and what `/metrics` and `stats` tell of the broker.
    let monitoring: any MonitoringTransport
    let inspection: any BrokerInspection
    /// For logs: URLs with passwords masked.
    let brokerDescription: String
    let backendDescription: String

    static func make(brokerURL: String, backendURL: String, resultExpires: Int, amqp: AMQPSettings, brokerTLS: TLSOptions? = nil,
                     backendTLS: TLSOptions? = nil, leaseTimeout: Double = 30, limits: MessageLimits = MessageLimits(), logger: Logger,
                     resultSigning: (any MessageSigning)? = nil) throws -> Transports {
        if AMQPURL.isAMQP(brokerURL) {
            var url: AMQPURL
            do { url = try AMQPURL(brokerURL) } catch { throw FnHostError(error.description) }
            let heartbeat = url.heartbeat ?? amqp.heartbeat
            url.heartbeat = heartbeat
            let broker = AMQPBroker(settings: .init(url: url, tls: amqp.tls, heartbeat: heartbeat, topology: amqp.topology, limits: limits), logger: logger)
            if backendURL.hasPrefix("rpc://") {
                return Transports(broker: broker, backend: RPCResultBackend(publisher: broker.publisher, persistent: amqp.resultPersistent, signing: resultSigning),
                                  redisBroker: nil, amqpBroker: broker,
                                  monitoring: AMQPMonitoringTransport(url: url, tls: amqp.tls, heartbeat: heartbeat),
                                  inspection: AMQPInspection(broker: broker), brokerDescription: url.description, backendDescription: "rpc://")
            }
            if AMQPURL.isAMQP(backendURL) {
                throw FnHostError("result backend \(ConnectionURL.mask(backendURL)): an amqp:// URL is not a result backend; use rpc:// (replies over this broker) or redis://")
            }
            let backend = try redisBackend(backendURL, tls: backendTLS, resultExpires: resultExpires, signing: resultSigning)
            return Transports(broker: broker, backend: backend, redisBroker: nil, amqpBroker: broker,
                              monitoring: AMQPMonitoringTransport(url: url, tls: amqp.tls, heartbeat: heartbeat),
                              inspection: AMQPInspection(broker: broker), brokerDescription: url.description, backendDescription: backend.description)
        }
        let url: RedisURL
        do { url = try RedisURL(brokerURL, tls: brokerTLS) } catch {
            throw FnHostError("\(error.description) (fnhost takes redis://host:port/db, rediss://, amqp://user:pass@host:port/vhost or amqps:// brokers)")
        }
        if backendURL.hasPrefix("rpc://") {
            throw FnHostError("the rpc:// result backend needs an amqp:// broker in this version; use a redis:// result backend with a Redis broker")
        }
        let broker = RedisBroker(url: url, limits: limits, logger: logger, leaseTimeout: leaseTimeout)
        let backend = try redisBackend(backendURL, tls: backendTLS, resultExpires: resultExpires, signing: resultSigning)
        return Transports(broker: broker, backend: backend, redisBroker: broker, amqpBroker: nil,
                          monitoring: RedisMonitoringTransport(url: url), inspection: RedisInspection(url: url),
                          brokerDescription: url.description, backendDescription: backend.description)
    }

    private static func redisBackend(_ text: String, tls: TLSOptions?, resultExpires: Int, signing: (any MessageSigning)?) throws -> RedisResultBackend {
        do { return RedisResultBackend(url: try RedisURL(text, tls: tls), resultExpires: resultExpires, signing: signing) } catch {
            throw FnHostError("result backend: \(error.description) (fnhost takes redis://, rediss:// and rpc:// result backends)")
        }
    }
}
