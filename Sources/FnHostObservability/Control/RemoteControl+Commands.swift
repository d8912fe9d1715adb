import CeleryProtocol
import FnHostCore

#if canImport(Glibc)
import Glibc
#endif

/// The remote-control commands, with Celery 5.7's argument names and reply shapes
/// (celery/worker/control.py; captures in shared/fixtures/celery-5.7/pidbox_reply_*.json).
extension RemoteControl {
    static func ok(_ text: String) -> JSON { .object(["ok": .string(text)]) }
    static func nok(_ text: String) -> JSON { .object(["error": .string(text)]) }

    /// Runs `method`; `nil` means no reply (a cast, or `shutdown`).
    func run(_ method: String, _ a: JSONObject, from body: JSON) throws -> JSON? {
        let d = context.dispatcher
        switch method {
        case "ping":
            return Self.ok("pong")
        case "clock":
            return .object(["clock": .int(clock.now)])
        case "hello":
            guard let from = a["from_node"]?.stringValue, from != context.hostname else { return nil }
            return .object(["revoked": .array(d.snapshot().revoked.map { .string($0) }), "clock": .int(clock.now)])
        case "registered":
            return registered(items: a["taskinfoitems"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        case "active":
            let safe = a["safe"]?.boolValue ?? false
            return .array(d.snapshot().active.map { requestInfo($0.request, startedAt: $0.startedAt, acknowledged: true, safe: safe) })
        case "reserved":
            return .array(d.snapshot().reserved.map { requestInfo($0, startedAt: nil, acknowledged: false, safe: false) })
        case "scheduled":
            return .array(d.snapshot().scheduled.map {
                .object(["eta": .string(CeleryTime.isoformat($0.eta)), "priority": .int(Int64($0.request.message.priority)),
                         "request": requestInfo($0.request, startedAt: nil, acknowledged: false, safe: false)])
            })
        case "revoked":
            return .array(d.snapshot().revoked.map { .string($0) })
        case "query_task":
            return queryTask(ids: Self.ids(a["ids"] ?? a["task_id"]))
        case "stats":
            return stats()
        case "active_queues":
            return .array(d.snapshot().queues.map(Self.queueInfo))
        case "conf":
            return .object(context.configuration)
        case "report":
            return Self.ok(report())
        case "revoke":
            return revoke(a)
        case "enable_events":
            let was = context.events.setTaskEvents(true)
            if !was { logger.info("remote control: task events enabled") }
            return Self.ok(was ? "task events already enabled" : "task events enabled")
        case "disable_events":
            let was = context.events.setTaskEvents(false)
            if was { logger.info("remote control: task events disabled") }
            return Self.ok(was ? "task events disabled" : "task events already disabled")
        case "heartbeat":
            context.events.heartbeat(freq: 5)
            return nil
        case "shutdown":
            logger.warning("remote control: shutdown requested")
            context.shutdown()
            return nil
        case "rate_limit":
            guard let name = a["task_name"]?.stringValue else { return Self.nok("task_name is required") }
            let text = a["rate_limit"].flatMap { $0.stringValue ?? $0.intValue.map { String($0) } }
            do { try d.setRateLimit(task: name, text) } catch {
                return Self.nok(error.description.hasPrefix("unknown task") ? "unknown task" : "Invalid rate limit string: \(error.description)")
            }
            logger.info("remote control: rate limit of \(name) set to \(text ?? "none")")
            return Self.ok(text == nil || text == "0" ? "rate limit disabled successfully" : "new rate limit set successfully")
        case "time_limit":
            guard let name = a["task_name"]?.stringValue else { return Self.nok("task_name is required") }
            do { try d.setTimeLimit(task: name, hard: a["hard"]?.doubleValue, soft: a["soft"]?.doubleValue) } catch {
                return Self.nok("unknown task")
            }
            logger.info("remote control: time limits of \(name) set to hard \(a["hard"]?.doubleValue.map { "\($0)s" } ?? "none"), soft \(a["soft"]?.doubleValue.map { "\($0)s" } ?? "none")")
            return Self.ok("time limits set successfully")
        case "add_consumer":
            guard let queue = a["queue"]?.stringValue, !queue.isEmpty else { return Self.nok("queue is required") }
            if d.snapshot().queues.contains(queue) { return Self.ok("already consuming from \(PythonRepr.string(queue))") }
            try context.declareQueue(queue)
            _ = d.addConsumer(queue: queue)
            logger.info("remote control: consuming from \(queue) too")
            return Self.ok("add consumer \(queue)")
        case "cancel_consumer":
            guard let queue = a["queue"]?.stringValue else { return Self.nok("queue is required") }
            _ = d.cancelConsumer(queue: queue)
            logger.info("remote control: no longer consuming from \(queue)")
            return Self.ok("no longer consuming from \(queue)")
        case "pool_grow", "pool_shrink":
            let n = Int(a["n"]?.intValue ?? 1)
            guard n >= 1 else { return Self.nok("n must be at least 1") }
            let now = d.snapshot().concurrency
            let target = method == "pool_grow" ? min(1024, now + n) : max(1, now - n)
            resize(to: target)
            return Self.ok(method == "pool_grow" ? "pool will grow" : "pool will shrink")
        case "autoscale":
            guard let high = a["max"]?.intValue, let low = a["min"]?.intValue, high >= 1, low >= 0, low <= high, high <= 1024 else {
                return Self.nok("autoscale needs 1 <= max <= 1024 and 0 <= min <= max")
            }
            autoscaleBounds = (Int(high), Int(low))
            resize(to: Int(high))
            return Self.ok("autoscale now max=\(high) min=\(low)")
        default:
            return Self.nok("unknown command \(PythonRepr.string(method))")
        }
    }

    /// Celery's `bugreport` shape: software, platform, then the settings `conf` shows (secrets
    /// already masked there), one `key: value` line each.
    private func report() -> String {
        var lines = ["software -> fnhost (Swift) celery-protocol:2", "platform -> system:Linux", ""]
        for (key, value) in context.configuration.entries.sorted(by: { $0.key < $1.key }) {
            lines.append("\(key): \(JSONWriter.string(value))")
        }
        return lines.joined(separator: "\n")
    }

    private func resize(to n: Int) {
        context.dispatcher.setConcurrency(n)
        context.resizePool(n)
        logger.info("remote control: concurrency is now \(n)")
    }

    static func ids(_ value: JSON?) -> [String] {
        switch value {
        case .string(let s)?: return [s]
        case .array(let items)?: return items.flatMap { ids($0) }
        default: return []
        }
    }

    private func registered(items: [String]) -> JSON {
        .array(context.dispatcher.currentRegistry.sorted.map { f in  // what serves now, after any reload
            let attrs: [(String, String?)] = items.map { item in
                switch item {
                case "rate_limit": return (item, f.options.rateLimit)
                case "time_limit": return (item, f.options.timeLimit.map { "\($0)" })
                case "soft_time_limit": return (item, f.options.softTimeLimit.map { "\($0)" })
                case "max_retries": return (item, f.options.maxRetries.map { "\($0)" })
                case "acks_late": return (item, f.options.acksLate ? "True" : nil)
                case "ignore_result": return (item, f.options.ignoreResult ? "True" : nil)
                case "queue": return (item, f.options.queue)
                default: return (item, nil)
                }
            }
            let set = attrs.compactMap { a in a.1.map { "\(a.0)=\($0)" } }
            return .string(set.isEmpty ? f.name : "\(f.name) [\(set.joined(separator: " "))]")
        })
    }

    /// Celery's request-info object (`Request.info`).
    func requestInfo(_ r: TaskRequest, startedAt: Double?, acknowledged: Bool, safe: Bool) -> JSON {
        let m = r.message
        var args: JSON = .string(m.headers["argsrepr"]?.stringValue ?? "()")
        var kwargs: JSON = .string(m.headers["kwargsrepr"]?.stringValue ?? "{}")
        if !safe, let body = try? TaskBody(json: m.body) {
            args = (try? JSONParser.parse(body.argsJSON)) ?? args
            kwargs = (try? JSONParser.parse(body.kwargsJSON)) ?? kwargs
        }
        return .object([
            "id": .string(r.id), "name": .string(m.task), "args": args, "kwargs": kwargs,
            "type": .string(m.task), "hostname": .string(context.hostname),
            "time_start": startedAt.map { .double($0) } ?? .null, "acknowledged": .bool(acknowledged || !r.function.options.acksLate),
            "delivery_info": .object(["exchange": "", "routing_key": .string(r.delivery.queue), "priority": .int(Int64(m.priority)),
                                      "redelivered": .bool(m.headers["redelivered"]?.boolValue ?? false)]),
            "worker_pid": startedAt == nil ? .null : context.workerPid(r.id).map { .int(Int64($0)) } ?? .null,
        ])
    }

    private func queryTask(ids: [String]) -> JSON {
        let wanted = Set(ids)
        let s = context.dispatcher.snapshot()
        var out = JSONObject()
        for a in s.active where wanted.contains(a.request.id) {
            out[a.request.id] = .array(["active", requestInfo(a.request, startedAt: a.startedAt, acknowledged: true, safe: false)])
        }
        for r in s.reserved where wanted.contains(r.id) {
            out[r.id] = .array(["reserved", requestInfo(r, startedAt: nil, acknowledged: false, safe: false)])
        }
        for e in s.scheduled where wanted.contains(e.request.id) {
            out[e.request.id] = .array(["scheduled", requestInfo(e.request, startedAt: nil, acknowledged: false, safe: false)])
        }
        return .object(out)
    }

    private func revoke(_ a: JSONObject) -> JSON {
        let ids = Self.ids(a["task_id"])
        let terminate = a["terminate"]?.boolValue ?? false
        let signum = Self.signal(a["signal"])
        let killed = context.dispatcher.revoke(ids, terminate: terminate, signal: signum)
        logger.info("remote control: revoked \(ids.joined(separator: ", "))\(terminate ? " (terminate, signal \(signum))" : "")")
        if terminate {
            return Self.ok(killed.isEmpty ? "terminate: tasks unknown" : "terminate: \(killed.joined(separator: ", "))")
        }
        return Self.ok("tasks {\(ids.map(PythonRepr.string).joined(separator: ", "))} flagged as revoked")
    }

    /// A signal given by name (`SIGKILL`, `KILL`) or number; SIGTERM by default, as Celery.
    public static func signal(_ value: JSON?) -> Int32 {
        if let n = value?.intValue { return Int32(n) }
        guard var name = value?.stringValue?.uppercased() else { return SIGTERM }
        if !name.hasPrefix("SIG") { name = "SIG" + name }
        let known: [String: Int32] = ["SIGTERM": SIGTERM, "SIGKILL": SIGKILL, "SIGINT": SIGINT, "SIGQUIT": SIGQUIT,
                                      "SIGHUP": SIGHUP, "SIGUSR1": SIGUSR1, "SIGUSR2": SIGUSR2]
        return known[name] ?? SIGTERM
    }

    static func queueInfo(_ name: String) -> JSON {
        .object([
            "name": .string(name),
            "exchange": .object(["name": .string(name), "type": "direct", "arguments": .null, "durable": true, "passive": false,
                                 "auto_delete": false, "delivery_mode": .null, "no_declare": false]),
            "routing_key": .string(name), "queue_arguments": .null, "binding_arguments": .null, "consumer_arguments": .null,
            "durable": true, "exclusive": false, "auto_delete": false, "no_ack": false, "alias": .null, "bindings": .array([]),
            "no_declare": .null, "expires": .null, "message_ttl": .null, "max_length": .null, "max_length_bytes": .null,
            "max_priority": .null,
        ])
    }

    private func stats() -> JSON {
        let s = context.dispatcher.snapshot()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        var total = JSONObject()
        for (name, n) in s.totals.sorted(by: { $0.key < $1.key }) { total[name] = .int(Int64(n)) }
        var pool: JSONObject = [
            "implementation": .string(context.poolImplementation),
            "max-concurrency": .int(Int64(s.concurrency)),
            "processes": .array(context.workerPids().map { .int(Int64($0)) }),
            "max-tasks-per-child": context.maxTasksPerChild.map { .int(Int64($0)) } ?? "N/A",
            "put-guarded-by-semaphore": false,
            "timeouts": .array([0, 0]),
        ]
        if let bounds = autoscaleBounds { pool["autoscaler"] = .object(["max": .int(Int64(bounds.max)), "min": .int(Int64(bounds.min))]) }
        return .object([
            "total": .object(total),
            "pid": .int(Int64(getpid())),
            "clock": .string(String(clock.now)),
            "uptime": .int(Int64(monotonicNow() - startedAt)),
            "pool": .object(pool),
            "broker": .object(context.inspection?.connectionInfo ?? [:]),
            "prefetch_count": .int(Int64(s.concurrency * s.prefetchMultiplier)),
            "rusage": .object([
                "utime": .double(seconds(usage.ru_utime)), "stime": .double(seconds(usage.ru_stime)),
                "maxrss": .int(Int64(usage.ru_maxrss)), "ixrss": .int(Int64(usage.ru_ixrss)), "idrss": .int(Int64(usage.ru_idrss)),
                "isrss": .int(Int64(usage.ru_isrss)), "minflt": .int(Int64(usage.ru_minflt)), "majflt": .int(Int64(usage.ru_majflt)),
                "nswap": .int(Int64(usage.ru_nswap)), "inblock": .int(Int64(usage.ru_inblock)), "oublock": .int(Int64(usage.ru_oublock)),
                "msgsnd": .int(Int64(usage.ru_msgsnd)), "msgrcv": .int(Int64(usage.ru_msgrcv)), "nsignals": .int(Int64(usage.ru_nsignals)),
                "nvcsw": .int(Int64(usage.ru_nvcsw)), "nivcsw": .int(Int64(usage.ru_nivcsw)),
            ]),
        ])
    }
}
