import CeleryProtocol
import FnHostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Celery's remote control (celery-protocol.md §8), the worker side: consumes the host's
/// mailbox on the `celery.pidbox` fanout exchange, runs the commands addressed to this node
/// (`destination` empty or naming it, or a matching `pattern`), and replies through
/// `reply.celery.pidbox` to the client's reply queue with `{"<nodename>": <reply>}`, headers
/// `{"ticket", "clock"}`. Commands without `reply_to` are casts: run, not answered.
///
/// The commands themselves are `RemoteControl+Commands.swift`; what they act on is the
/// `Context`. A command that throws is answered `{"error": "<reason>"}`, as kombu does.
///
/// Threading: one consumer thread (`start`/`stop`); commands run on it.
public final class RemoteControl: @unchecked Sendable {
    /// The fanout exchange of requests, and the direct exchange of replies.
    public static let exchange = "celery.pidbox"
    public static let replyExchange = "reply.celery.pidbox"

    /// Everything the commands act on or report.
    public struct Context: Sendable {
        public var hostname: String
        public var dispatcher: Dispatcher
        public var registry: TaskRegistry
        public var events: EventDispatcher
        public var inspection: (any BrokerInspection)?
        /// `stats()['pool']['implementation']`, e.g. `fnhost:prefork`.
        public var poolImplementation: String
        public var maxTasksPerChild: Int?
        /// `conf()`: Celery setting names to values, secrets already masked.
        public var configuration: JSONObject
        /// Worker process pids, and the one running a task.
        public var workerPids: @Sendable () -> [Int32]
        public var workerPid: @Sendable (String) -> Int32?
        /// Declares a queue on the broker (`add_consumer`).
        public var declareQueue: @Sendable (String) throws -> Void
        /// Changes the process cap along with the dispatcher's concurrency (pool resizing).
        public var resizePool: @Sendable (Int) -> Void
        /// Starts a warm shutdown (`shutdown`).
        public var shutdown: @Sendable () -> Void
        /// Message signing: when set, only requests signed by a certificate of the store are
        /// run (a Python worker with `accept_content=['auth']` refuses the others too), and
        /// replies are signed, as an app with `setup_security()` expects.
        public var signing: (any MessageSigning)?

        public init(hostname: String, dispatcher: Dispatcher, registry: TaskRegistry, events: EventDispatcher,
                    inspection: (any BrokerInspection)?, poolImplementation: String, maxTasksPerChild: Int?,
                    configuration: JSONObject, workerPids: @escaping @Sendable () -> [Int32],
                    workerPid: @escaping @Sendable (String) -> Int32?, declareQueue: @escaping @Sendable (String) throws -> Void,
                    resizePool: @escaping @Sendable (Int) -> Void, shutdown: @escaping @Sendable () -> Void,
                    signing: (any MessageSigning)? = nil) {
            self.signing = signing
            self.hostname = hostname
            self.dispatcher = dispatcher
            self.registry = registry
            self.events = events
            self.inspection = inspection
            self.poolImplementation = poolImplementation
            self.maxTasksPerChild = maxTasksPerChild
            self.configuration = configuration
            self.workerPids = workerPids
            self.workerPid = workerPid
            self.declareQueue = declareQueue
            self.resizePool = resizePool
            self.shutdown = shutdown
        }
    }

    let context: Context
    let clock: LamportClock
    let logger: Logger
    let startedAt = monotonicNow()
    private let transport: any MonitoringTransport
    private let lock = ConditionLock()
    private var stopping = false
    private var thread: JoinableThread?
    /// Autoscale bounds set by `autoscale` (max, min).
    var autoscaleBounds: (max: Int, min: Int)?

    public init(transport: any MonitoringTransport, context: Context, clock: LamportClock, logger: Logger) {
        self.transport = transport
        self.context = context
        self.clock = clock
        self.logger = logger
    }

    /// The host's mailbox queue: `<nodename>.celery.pidbox`.
    public var mailbox: String { "\(context.hostname).\(Self.exchange)" }

    /// Starts consuming (again, after `stop`).
    /// The mailbox is subscribed (declared and bound, on RabbitMQ) before this returns, so a
    /// request sent once the host has said it is ready reaches it.
    public func start() {
        lock.withLock { stopping = false }
        do {
            for message in try transport.receive(fromFanout: Self.exchange, queue: mailbox, timeout: 0.01) { handle(message) }
        } catch {
            logger.warning("remote control: subscribing to \(Self.exchange) failed, retrying in the background: \(error)")
        }
        let t = startThread(name: "fnhost-pidbox") { [self] in run() }
        lock.withLock { thread = t }
    }

    /// Stops consuming; returns within one receive timeout.
    public func stop() {
        let t = lock.withLock { () -> JoinableThread? in
            stopping = true
            return thread
        }
        t?.join()
    }

    private func run() {
        var backoff = 0.2
        while !lock.withLock({ stopping }) {
            do {
                let messages = try transport.receive(fromFanout: Self.exchange, queue: mailbox, timeout: 0.5)
                backoff = 0.2
                for message in messages { handle(message) }
            } catch {
                if lock.withLock({ stopping }) { break }
                logger.warning("remote control: receiving from \(Self.exchange) failed, retrying in \(backoff)s: \(error)")
                sleepSeconds(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    /// Whether a request is addressed to this node (kombu's `Node.handle_message` rules).
    func isForMe(_ body: JSON) -> Bool {
        if case .array(let names)? = body["destination"], !names.isEmpty {
            return names.contains(.string(context.hostname))
        }
        if case .string(let pattern)? = body["pattern"], !pattern.isEmpty {
            let matcher = body["matcher"]?.stringValue ?? "glob"
            return matcher == "glob" ? Glob.matches(pattern, context.hostname) : pattern == context.hostname
        }
        return true
    }

    /// The request's JSON body: with signing, only a signed request that verifies (any other is
    /// logged and dropped, never run); without, only a JSON one.
    func opened(_ message: MonitoringMessage) -> JSON? {
        guard let signing = context.signing else {
            if message.signedBody != nil { logger.warning("remote control: a signed request was ignored: message signing is not configured") }
            return message.signedBody == nil ? message.body : nil
        }
        guard let signed = message.signedBody else {
            logger.warning("remote control: an unsigned request was refused (message signing is on; task_serializer: auth)")
            return nil
        }
        do {
            let payload = try signing.verify(signed)
            guard payload.innerContentType == "application/json" else { throw SecurityError("content type \(payload.innerContentType.prefix(40)) is not JSON") }
            return try JSONParser.parse(payload.body)
        } catch {
            logger.warning("remote control: a request was refused: SecurityError: \(error)")
            return nil
        }
    }

    /// Runs one request and sends its reply, if one is wanted.
    func handle(_ message: MonitoringMessage) {
        guard let body = opened(message) else { return }
        if let theirs = message.headers["clock"]?.intValue { clock.adjust(theirs) }
        guard let method = body["method"]?.stringValue, isForMe(body) else { return }
        let arguments = body["arguments"]?.objectValue ?? [:]
        logger.debug("remote control: \(method)")
        var reply: JSON?
        do {
            reply = try run(method, arguments, from: body)
        } catch {
            logger.warning("remote control command \(method) failed: \(error)")
            reply = .object(["error": .string("\(error)")])
        }
        guard let reply, case .object(let to)? = body["reply_to"],
              let exchange = to["exchange"]?.stringValue, let routingKey = to["routing_key"]?.stringValue else { return }
        var headers: JSONObject = ["clock": .int(clock.forward())]
        if let ticket = body["ticket"] { headers["ticket"] = ticket }
        headers = ["ticket": headers["ticket"] ?? .null, "clock": headers["clock"]!]
        var out = MonitoringMessage(routingKey: routingKey, headers: headers, body: .object([context.hostname: reply]))
        do {
            if let signing = context.signing {
                out = MonitoringMessage(routingKey: routingKey, headers: headers,
                                        signedBody: try signing.sign(out.wireBody, contentType: "application/json", contentEncoding: "utf-8"))
            }
            try transport.reply(out, throughDirect: exchange.isEmpty ? Self.replyExchange : exchange)
        } catch {
            logger.warning("remote control: replying to \(method) failed: \(error)")
        }
    }
}

/// fnmatch-style globs (`*`, `?`, `[...]`) for pidbox `pattern`s.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        match(Array(pattern), 0, Array(text), 0)
    }

    private static func match(_ p: [Character], _ pi: Int, _ t: [Character], _ ti: Int) -> Bool {
        if pi == p.count { return ti == t.count }
        switch p[pi] {
        case "*":
            for k in ti...t.count where match(p, pi + 1, t, k) { return true }
            return false
        case "?":
            return ti < t.count && match(p, pi + 1, t, ti + 1)
        case "[":
            guard ti < t.count, let close = p[(pi + 1)...].firstIndex(of: "]") else { return ti < t.count && p[pi] == t[ti] && match(p, pi + 1, t, ti + 1) }
            let set = p[(pi + 1)..<close]
            return set.contains(t[ti]) && match(p, close + 1, t, ti + 1)
        default:
            return ti < t.count && p[pi] == t[ti] && match(p, pi + 1, t, ti + 1)
        }
    }
}
