/// A Celery signature as it travels inside a message (celery-protocol.md §1.4):
/// `{"task", "args", "kwargs", "options", "subtask_type", "immutable"}`.
///
/// Complex signatures are builtin tasks whose members are nested in `kwargs`: `celery.group`
/// (`kwargs.tasks`), `celery.chain` (`kwargs.tasks`, forward order) and `celery.chord`
/// (`kwargs.header`, `kwargs.body`). `kind` decodes them. Unknown option keys are kept as
/// received and written back unchanged, so a signature passes through fnhost intact.
public struct Signature: Sendable, Equatable {
    /// The task name (`celery.group`, `celery.chain`, `celery.chord` for complex signatures).
    public var task: String
    /// Positional arguments, as JSON values (kombu type wrappers kept as sent).
    public var args: [JSON]
    public var kwargs: JSONObject
    /// The frozen `apply_async` options: `task_id`, `reply_to`, `group_id`, `group_index`,
    /// `queue`, `link`, `link_error`, `chord`, `chain`...
    public var options: JSONObject
    /// `null` for a plain task, else "group", "chain", "chord", "chunks", "xmap", "xstarmap".
    public var subtaskType: String?
    /// `.si()`: the parent's result is never prepended to `args`.
    public var immutable: Bool

    /// What a signature stands for, with its members decoded.
    public indirect enum Kind: Sendable, Equatable {
        case task
        /// A group; the members in order.
        case group([Signature])
        /// A chain; the steps in forward order (the order they run).
        case chain([Signature])
        /// A chord: a header group run in parallel, then the body with their results.
        case chord(header: [Signature], headerOptions: JSONObject, body: Signature)
    }

    public init(task: String, args: [JSON] = [], kwargs: JSONObject = [:], options: JSONObject = [:],
                subtaskType: String? = nil, immutable: Bool = false) {
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.subtaskType = subtaskType
        self.immutable = immutable
    }

    /// Decodes a signature dict. Throws `.undecodableBody` naming what is wrong.
    public init(json: JSON) throws(MessageDecodingError) {
        guard case .object(let o) = json else {
            throw MessageDecodingError(.undecodableBody, "a signature must be a JSON object, not \(json.typeName)")
        }
        guard let task = o["task"]?.stringValue, !task.isEmpty else {
            throw MessageDecodingError(.undecodableBody, "a signature has no task name ('task' must be a non-empty string)")
        }
        func bad(_ what: String) -> MessageDecodingError {
            MessageDecodingError(.undecodableBody, "signature of \(task.prefix(200)): \(what)")
        }
        self.task = task
        switch o["args"] {
        case nil, .null?: self.args = []
        case .array(let a)?: self.args = a
        default: throw bad("'args' must be a list")
        }
        switch o["kwargs"] {
        case nil, .null?: self.kwargs = [:]
        case .object(let k)?: self.kwargs = k
        default: throw bad("'kwargs' must be an object")
        }
        switch o["options"] {
        case nil, .null?: self.options = [:]
        case .object(let opts)?: self.options = opts
        default: throw bad("'options' must be an object")
        }
        switch o["subtask_type"] {
        case nil, .null?: self.subtaskType = nil
        case .string(let s)?: self.subtaskType = s
        default: throw bad("'subtask_type' must be a string or null")
        }
        switch o["immutable"] {
        case nil, .null?: self.immutable = false
        case .bool(let b)?: self.immutable = b
        default: throw bad("'immutable' must be a boolean")
        }
        _ = try kind  // validate nested members now, so a bad canvas fails where it arrives
    }

    /// The signature dict, as Celery writes it.
    public var json: JSON {
        .object([
            "task": .string(task), "args": .array(args), "kwargs": .object(kwargs), "options": .object(options),
            "subtask_type": subtaskType.map(JSON.string) ?? .null, "immutable": .bool(immutable),
        ])
    }

    /// The members of a complex signature, decoded.
    public var kind: Kind {
        get throws(MessageDecodingError) {
            func members(_ value: JSON?, _ what: String) throws(MessageDecodingError) -> [Signature] {
                guard case .array(let items)? = value else {
                    throw MessageDecodingError(.undecodableBody, "\(task): kwargs.\(what) must be a list of signatures")
                }
                var out: [Signature] = []
                for item in items { out.append(try Signature(json: item)) }
                return out
            }
            switch subtaskType ?? Self.builtinType(task) {
            case "group"?: return .group(try members(kwargs["tasks"], "tasks"))
            case "chain"?: return .chain(try members(kwargs["tasks"], "tasks"))
            case "chord"?:
                guard let headerJSON = kwargs["header"], let bodyJSON = kwargs["body"] else {
                    throw MessageDecodingError(.undecodableBody, "\(task): a chord needs kwargs.header and kwargs.body")
                }
                let body = try Signature(json: bodyJSON)
                // The header is a celery.group signature, or (older producers) a plain list.
                if case .array = headerJSON { return .chord(header: try members(headerJSON, "header"), headerOptions: [:], body: body) }
                let header = try Signature(json: headerJSON)
                switch try header.kind {
                case .group(let tasks): return .chord(header: tasks, headerOptions: header.options, body: body)
                default: return .chord(header: [header], headerOptions: [:], body: body)
                }
            case nil: return .task
            case let other?:
                throw MessageDecodingError(.undecodableBody, "\(task): canvas type '\(other.prefix(40))' (chunks, xmap, xstarmap) is not supported by fnhost")
            }
        }
    }

    private static func builtinType(_ task: String) -> String? {
        switch task {
        case "celery.group": return "group"
        case "celery.chain": return "chain"
        case "celery.chord": return "chord"
        default: return nil
        }
    }

    /// `options.task_id`: the id the producer froze for this signature (a group's id for a group).
    public var taskId: String? { options["task_id"]?.stringValue }

    /// A signature option given as one signature or a list of them (`link`, `link_error`).
    public func signatures(option key: String) throws(MessageDecodingError) -> [Signature] {
        try Self.list(options[key], what: "options.\(key) of \(task)")
    }

    /// Decodes `null`, one signature dict, or a list of them.
    public static func list(_ value: JSON?, what: String) throws(MessageDecodingError) -> [Signature] {
        switch value {
        case nil, .null?: return []
        case .object?: return [try Signature(json: value!)]
        case .array(let items)?:
            var out: [Signature] = []
            for item in items { out.append(try Signature(json: item)) }
            return out
        case let other?: throw MessageDecodingError(.undecodableBody, "\(what) must be a signature or a list of signatures, not \(other.typeName)")
        }
    }
}
