import CeleryProtocol

/// Applies Celery signatures from the worker side, as Celery's `Signature.apply_async`,
/// `group`, `chain` and `chord` do (celery-protocol.md §1.7-§1.10): it turns a signature into
/// the task messages to publish (with their queues), the chord sizes to set before any header
/// message is published, and the result tuples that go into the parent's `children`.
///
/// Pure: nothing is published here; the outcome handler performs what it returns. Ids come
/// from `makeId`, times from `clock`, so tests are deterministic.
public struct Canvas: Sendable {
    /// Routes messages whose signature names no queue.
    public var router: TaskRouter
    /// The `origin` header of published messages (the host's node name).
    public var origin: String
    /// Whether the result backend can count chord parts (Redis can; rpc:// cannot).
    public var supportsChords: Bool
    let makeId: @Sendable () -> String
    let clock: @Sendable () -> Double

    public init(router: TaskRouter, origin: String, supportsChords: Bool,
                makeId: @escaping @Sendable () -> String = Canvas.uuid4,
                clock: @escaping @Sendable () -> Double = CeleryTime.now) {
        self.router = router
        self.origin = origin
        self.supportsChords = supportsChords
        self.makeId = makeId
        self.clock = clock
    }

    /// Why a signature could not be applied; stored as the failure of the task applying it.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public let exception: TaskException
        public var description: String { "\(exception.type): \(exception.message)" }
        init(_ type: String, _ module: String, _ message: String) {
            exception = TaskException(type: type, module: module, message: message)
        }
    }

    /// What applying signatures produces.
    public struct Application: Sendable {
        /// Task messages and their queues, in publishing order.
        public var publish: [(queue: String, message: TaskMessage)] = []
        /// `celery-taskset-meta-<gid>.s` values to set before `publish` (chords applied here).
        public var chordSizes: [(groupId: String, size: Int)] = []
        /// Result tuples (`[[id, null], null]`, `[[gid, null], [members]]`) for `children`.
        public var children: [JSON] = []

        public init() {}

        mutating func append(_ other: Application) {
            publish += other.publish
            chordSizes += other.chordSizes
            children += other.children
        }
    }

    /// A random version-4 UUID string, as Celery makes task ids.
    public static func uuid4() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// `[[id, null], null]`: an AsyncResult as a result tuple.
    static func resultTuple(_ id: String) -> JSON { .array([.array([.string(id), .null]), .null]) }

    /// Options a signature keeps when the caller passes others (Celery's `_IMMUTABLE_OPTIONS`).
    static let immutableOptions: Set<String> = ["group_id", "stamped_headers"]
    /// Options that make a signature a group or chord member: they go to a chain's last step.
    static let membershipOptions: Set<String> = ["group_id", "group_index", "chord"]

    /// Applies `signature` with `args` prepended (unless immutable) and `options` merged over
    /// its own, continuing into `chain` (remaining steps, reverse order) when given.
    public func apply(_ signature: Signature, args partial: [JSON] = [], options call: JSONObject = [:],
                      chain: [Signature]? = nil) throws(Error) -> Application {
        let kind: Signature.Kind
        do { kind = try signature.kind } catch { throw Error("DecodeError", "kombu.exceptions", error.reason) }
        switch kind {
        case .task:
            let (args, kwargs, options) = Self.merge(signature, args: partial, options: call)
            let message = try message(task: signature.task, args: args, kwargs: kwargs, options: options, chain: chain)
            var out = Application()
            out.publish.append((router.queue(for: signature.task, options: options), message))
            out.children.append(Self.resultTuple(message.id))
            return out

        case .group(let members):
            let gid = signature.taskId ?? makeId()
            var out = Application()
            var tuples: [JSON] = []
            for (i, member) in members.enumerated() {
                var options = call.filtering { !Self.membershipOptions.contains($0) }
                options["group_id"] = .string(gid)
                options["group_index"] = .int(Int64(i))
                let applied = try apply(member, args: partial, options: options)
                out.publish += applied.publish
                out.chordSizes += applied.chordSizes
                tuples += applied.children
            }
            out.children.append(.array([.array([.string(gid), .null]), .array(tuples)]))
            return out

        case .chain(let steps):
            guard var first = steps.first else { return Application() }
            var later = Array(steps.dropFirst())
            let membership = call.filtering { Self.membershipOptions.contains($0) }
            if membership.count > 0 {
                if later.isEmpty {
                    for (k, v) in membership.entries { first.options[k] = v }
                } else {
                    for (k, v) in membership.entries { later[later.count - 1].options[k] = v }
                }
            }
            let rest = (chain ?? []) + later.reversed()
            return try apply(first, args: partial, options: call.filtering { !Self.membershipOptions.contains($0) }, chain: rest)

        case .chord(let header, let headerOptions, var body):
            guard supportsChords else {
                throw Error("NotImplementedError", "builtins",
                            "Starting chords requires a result backend that supports chords (Redis); rpc:// cannot run chords")
            }
            let gid = headerOptions["task_id"]?.stringValue ?? signature.taskId ?? makeId()
            body.options["group_id"] = .string(gid)
            if let chain, !chain.isEmpty { body.options["chain"] = .array(chain.map(\.json)) }
            body.options["parent_id"] = nil
            if body.taskId == nil { body.options["task_id"] = .string(makeId()) }
            let lineage = call.filtering { $0 == "parent_id" || $0 == "root_id" }
            var out = Application()
            if header.isEmpty {
                out.append(try apply(body, args: [.array([])], options: lineage))
                return out
            }
            for member in header {
                if case .group = (try? member.kind) ?? .task {
                    throw Error("NotImplementedError", "builtins", "fnhost does not run chords whose header holds nested groups (\(gid))")
                }
            }
            out.chordSizes.append((gid, header.count))
            for (i, member) in header.enumerated() {
                var options = lineage
                options["group_id"] = .string(gid)
                options["group_index"] = .int(Int64(i))
                options["chord"] = body.json
                let applied = try apply(member, args: partial, options: options)
                out.publish += applied.publish
                out.chordSizes += applied.chordSizes
            }
            out.children.append(Self.resultTuple(body.taskId!))
            return out
        }
    }

    /// Celery's `Signature._merge`: partial args prepended unless immutable, options merged
    /// over the signature's (null ones dropped, `group_id`/`stamped_headers` kept).
    static func merge(_ signature: Signature, args partial: [JSON], options call: JSONObject) -> (args: [JSON], kwargs: JSONObject, options: JSONObject) {
        var options = signature.options
        for (key, value) in call.entries where !value.isNull {
            if immutableOptions.contains(key), let own = options[key], !own.isNull { continue }
            options[key] = value
        }
        return (signature.immutable ? signature.args : partial + signature.args, signature.kwargs, options)
    }

    /// A v2 task message as Celery's `amqp.as_task_v2` builds it from apply_async options.
    func message(task: String, args: [JSON], kwargs: JSONObject, options: JSONObject, chain: [Signature]?) throws(Error) -> TaskMessage {
        let id = options["task_id"]?.stringValue ?? makeId()
        let now = clock()
        func time(_ key: String, relative: String? = nil) -> JSON {
            if let relative, let seconds = options[relative]?.doubleValue, seconds != 0 { return .string(CeleryTime.isoformat(now + seconds)) }
            switch options[key] {
            case .string(let s)?: return .string(s)
            case let v? where v.doubleValue != nil: return .string(CeleryTime.isoformat(now + v.doubleValue!))
            default: return .null
            }
        }
        let stampedHeaders = options["stamped_headers"] ?? .null
        var stamps: JSONObject = [:]
        for name in stampedHeaders.arrayValue ?? [] { if let n = name.stringValue { stamps[n] = options[n] ?? .null } }
        var headers: JSONObject = [
            "lang": "py", "task": .string(task), "id": .string(id), "shadow": options["shadow"] ?? .null,
            "eta": time("eta", relative: "countdown"), "expires": time("expires"),
            "group": options["group_id"] ?? .null, "group_index": options["group_index"] ?? .null,
            "retries": 0, "timelimit": .array([options["time_limit"] ?? .null, options["soft_time_limit"] ?? .null]),
            "root_id": .string(options["root_id"]?.stringValue ?? id), "parent_id": options["parent_id"] ?? .null,
            "argsrepr": .string(PythonRepr.args(args)), "kwargsrepr": .string(PythonRepr.kwargs(kwargs)),
            "origin": .string(origin), "ignore_result": .bool(options["ignore_result"]?.boolValue ?? false),
            "replaced_task_nesting": 0, "stamped_headers": stampedHeaders, "stamps": .object(stamps),
        ]
        if case .object(let custom)? = options["headers"] {
            for (key, value) in custom.entries where headers[key] == nil { headers[key] = value }
        }
        let chainJSON: JSON = chain.map { .array($0.map(\.json)) } ?? options["chain"] ?? .null
        func signatures(_ key: String) -> JSON {
            switch options[key] {
            case nil, .null?: return .null
            case .object(let o)?: return .array([.object(o)])
            case let v?: return v
            }
        }
        let embed: JSON = .object(["callbacks": signatures("link"), "errbacks": signatures("link_error"),
                                   "chain": chainJSON, "chord": options["chord"] ?? .null])
        let body = JSONWriter.bytes(.array([.array(args), .object(kwargs), embed]))
        do {
            return try TaskMessage(headers: headers, contentType: "application/json", contentEncoding: "utf-8", body: body,
                                   correlationId: id, replyTo: options["reply_to"]?.stringValue ?? "",
                                   priority: Int(options["priority"]?.intValue ?? 0))
        } catch {
            throw Error("ValueError", "builtins", "cannot build the message of \(task): \(error.reason)")
        }
    }
}

extension JSONObject {
    /// The members whose key satisfies `keep`, in order.
    func filtering(_ keep: (String) -> Bool) -> JSONObject {
        JSONObject(entries.filter { keep($0.key) })
    }
}
