import CeleryProtocol

/// What a finished task starts or settles besides its own result: the next chain step,
/// callbacks, errbacks, FAILURE of the remaining chain steps, and its chord part.
public struct Continuation: Sendable {
    /// Published before the task's result is stored (chain steps, callbacks): so `children`
    /// is complete when the result becomes visible, as in Celery.
    public var publish: [(queue: String, message: TaskMessage)] = []
    /// Chord sizes to set before `publish` (a chord applied as the next chain step).
    public var chordSizes: [(groupId: String, size: Int)] = []
    /// Results stored with the task's own (FAILURE of each remaining chain step, a chord body's ChordError).
    public var results: [ResultMeta] = []
    /// Published after results are stored (errbacks, which may read the failure).
    public var publishAfterStore: [(queue: String, message: TaskMessage)] = []
    /// Chord parts to count once results are stored.
    public var chordParts: [ChordPart] = []
    /// Result tuples for the task's `children`.
    public var children: [JSON] = []
    /// True when a chord body was failed (ChordError) rather than applied.
    public var chordFailed = false

    public init() {}
}

extension Canvas {
    /// A task succeeded with `resultJSON`: its callbacks (one, or several as a group with a
    /// fresh id), then the next chain step (last element, with the frozen id, `chain` = the
    /// rest), each with `parent_id` = the task and `root_id` = its root; and its chord part.
    /// Throws when a follow-up cannot be built: the task then fails with that error, as a
    /// Python worker fails a task whose follow-up cannot be published.
    public func succeeded(_ message: TaskMessage, embed: CanvasEmbed, resultJSON: [UInt8]) throws(Error) -> Continuation {
        let retval: JSON = (try? JSONParser.parse(resultJSON)) ?? .null
        let root = message.rootId ?? message.id
        let lineage: JSONObject = ["parent_id": .string(message.id), "root_id": .string(root)]
        var out = Continuation()
        var applied = Application()
        if embed.callbacks.count == 1 {
            applied.append(try apply(embed.callbacks[0], args: [retval], options: lineage))
        } else if embed.callbacks.count > 1 {
            var plain: [Signature] = []
            for callback in embed.callbacks {
                if case .group? = try? callback.kind {
                    applied.append(try apply(callback, args: [retval], options: lineage))
                } else {
                    plain.append(callback)
                }
            }
            if !plain.isEmpty { applied.append(try apply(Self.group(plain), args: [retval], options: lineage)) }
        }
        if var chain = embed.chain, let next = chain.popLast() {
            applied.append(try apply(next, args: [retval], options: lineage, chain: chain))
        }
        out.publish = applied.publish
        out.chordSizes = applied.chordSizes
        out.children = applied.children
        if let part = chordPart(message, embed: embed, state: .success, result: retval) { out.chordParts.append(part) }
        out.results += chordRefused(message, embed: embed)
        return out
    }

    /// A task failed with `exception`: its chord part counts as failed, every remaining chain
    /// step (and a chord step's body) gets the same FAILURE when `storeResults`, and its
    /// errbacks are published as tasks called with the failed task's id.
    public func failed(_ message: TaskMessage, embed: CanvasEmbed, exception: TaskException, traceback: String?, storeResults: Bool) -> Continuation {
        var out = Continuation()
        if let part = chordPart(message, embed: embed, state: .failure, result: exception.json) { out.chordParts.append(part) }
        out.results += chordRefused(message, embed: embed)
        failChain(embed.chain ?? [], exception: exception, traceback: traceback, storeResults: storeResults, rootId: message.rootId ?? message.id, into: &out)
        out.publishAfterStore = errbacks(embed.errbacks, failedTaskId: message.id, rootId: message.rootId ?? message.id)
        return out
    }

    /// Celery's `_fail_chain`: FAILURE under every remaining step's frozen id (forward through
    /// the list), the chord part of a step that is a chord member, and a chord step's body.
    func failChain(_ chain: [Signature], exception: TaskException, traceback: String?, storeResults: Bool, rootId: String, into out: inout Continuation) {
        var queue = chain[...]
        while let step = queue.popFirst() {
            if storeResults, let id = step.taskId {
                var meta = ResultMeta.exception(exception, taskId: id, traceback: traceback,
                                                groupId: step.options["group_id"]?.stringValue, parentId: step.options["parent_id"]?.stringValue)
                meta.replyTo = step.options["reply_to"]?.stringValue  // where rpc:// sends it
                out.results.append(meta)
            }
            if let bodyJSON = step.options["chord"], !bodyJSON.isNull, let body = try? Signature(json: bodyJSON),
               let gid = step.options["group_id"]?.stringValue, let id = step.taskId {
                out.chordParts.append(ChordPart(groupId: gid, taskId: id, groupIndex: step.options["group_index"]?.intValue.map(Int.init),
                                                state: .failure, result: exception.json, body: body, rootId: rootId))
            }
            if case .chord(_, _, let body)? = try? step.kind { queue.append(body) }
        }
    }

    /// Errbacks as a Python worker publishes those it cannot call in-process: one group (fresh
    /// id, `group_index` each) called with `[failed task id]` (prepended to their own args).
    func errbacks(_ signatures: [Signature], failedTaskId: String, rootId: String) -> [(queue: String, message: TaskMessage)] {
        guard !signatures.isEmpty else { return [] }
        let applied = try? apply(Self.group(signatures), args: [.string(failedTaskId)],
                                 options: ["parent_id": .string(failedTaskId), "root_id": .string(rootId)])
        return applied?.publish ?? []
    }

    /// The chord part of a header member: it has a `group` header and a chord body in its embed.
    func chordPart(_ message: TaskMessage, embed: CanvasEmbed, state: TaskState, result: JSON) -> ChordPart? {
        guard supportsChords, let body = embed.chord, let gid = message.group else { return nil }
        return ChordPart(groupId: gid, taskId: message.id, groupIndex: message.groupIndex, state: state, result: result,
                         body: body, rootId: message.rootId ?? message.id)
    }

    /// Every header result is in and this host holds the claim: apply the body with the results
    /// in header order, or, if a part failed, store `ChordError` under the body's id, publish
    /// the body's errbacks and fail the body's chain (celery/backends/redis.py, 5.7).
    public func chordJoined(_ part: ChordPart, results: [ChordPartResult]) -> Continuation {
        var out = Continuation()
        var body = part.body
        let bodyId = body.taskId ?? makeId()
        body.options["task_id"] = .string(bodyId)
        func fail(_ exception: TaskException) -> Continuation {
            var failed = Continuation()
            failed.chordFailed = true
            var meta = ResultMeta.exception(exception, taskId: bodyId, traceback: Settlement.traceback(exception, context: "chord \(part.groupId)"),
                                            groupId: body.options["group_id"]?.stringValue)
            meta.replyTo = body.options["reply_to"]?.stringValue
            failed.results.append(meta)
            let chain = (try? Signature.list(body.options["chain"], what: "chain")) ?? []
            failChain(chain, exception: exception, traceback: nil, storeResults: true, rootId: part.rootId, into: &failed)
            failed.publishAfterStore = errbacks((try? body.signatures(option: "link_error")) ?? [], failedTaskId: bodyId, rootId: part.rootId)
            return failed
        }
        if let bad = results.first(where: { $0.state == TaskState.failure.rawValue || $0.state == TaskState.revoked.rawValue }) {
            let excType = bad.result["exc_type"]?.stringValue ?? "Exception"
            let args = bad.result["exc_message"]?.arrayValue ?? [bad.result["exc_message"] ?? .null]
            return fail(TaskException(type: "ChordError", module: "celery.exceptions",
                                      message: "Dependency \(bad.taskId) raised \(PythonRepr.exception(type: excType, messageArgs: args))"))
        }
        do {
            let applied = try apply(body, args: [.array(results.map(\.result))],
                                    options: ["parent_id": .string(part.taskId), "root_id": .string(part.rootId)])
            out.publish = applied.publish
            out.chordSizes = applied.chordSizes
        } catch {
            return fail(TaskException(type: "ChordError", module: "celery.exceptions", message: "Callback error: \(error.exception.description)"))
        }
        return out
    }

    /// A chord member reaching a host whose backend cannot count chords: the body can never be
    /// applied, so it fails with `NotImplementedError` instead of leaving `.get()` waiting.
    func chordRefused(_ message: TaskMessage, embed: CanvasEmbed) -> [ResultMeta] {
        guard !supportsChords, let body = embed.chord, message.group != nil, let bodyId = body.taskId else { return [] }
        let exception = TaskException(type: "NotImplementedError", module: "builtins",
                                      message: "chord \(message.group!) cannot be joined: this host's result backend does not support chords (use Redis)")
        var meta = ResultMeta.exception(exception, taskId: bodyId, groupId: message.group)
        meta.replyTo = body.options["reply_to"]?.stringValue
        return [meta]
    }

    /// A plain group of `members` (fresh id when applied).
    static func group(_ members: [Signature]) -> Signature {
        Signature(task: "celery.group", kwargs: ["tasks": .array(members.map(\.json))], subtaskType: "group")
    }
}
