import CeleryProtocol

/// Decides the queue of a message fnhost publishes (a chain step, a callback, a chord body),
/// as a Python producer would with the app's routing (celery-protocol.md §1.10):
///
/// 1. the signature's own `queue` option (`.set(queue=...)`);
/// 2. the queue of a function this host serves (its `queue` option, else its name);
/// 3. `task_routes` from the configuration: an exact name, else the first glob pattern
///    (`*` matches any run of characters) in the order given;
/// 4. the default queue, `celery`.
public struct TaskRouter: Sendable {
    /// Task name -> queue of the functions this host serves.
    public var functionQueues: [String: String]
    /// `task_routes`, in order: a name or glob pattern, and its queue.
    public var routes: [(pattern: String, queue: String)]
    /// `task_default_queue`.
    public var defaultQueue: String

    public init(functionQueues: [String: String] = [:], routes: [(pattern: String, queue: String)] = [], defaultQueue: String = "celery") {
        self.functionQueues = functionQueues
        self.routes = routes
        self.defaultQueue = defaultQueue
    }

    /// The router of a registry's functions, with the configured routes.
    public init(registry: TaskRegistry, routes: [(pattern: String, queue: String)] = [], defaultQueue: String = "celery") {
        self.init(functionQueues: registry.functions.mapValues(\.queue), routes: routes, defaultQueue: defaultQueue)
    }

    /// The queue for a message of `task` published with `options`.
    public func queue(for task: String, options: JSONObject = [:]) -> String {
        if let queue = options["queue"]?.stringValue, !queue.isEmpty { return queue }
        if let queue = functionQueues[task] { return queue }
        for route in routes where route.pattern == task { return route.queue }
        for route in routes where route.pattern.contains("*") && Self.glob(route.pattern, matches: task) { return route.queue }
        return defaultQueue
    }

    /// fnmatch-style `*` globbing (the only wildcard Celery users put in `task_routes` keys).
    static func glob(_ pattern: String, matches name: String) -> Bool {
        let p = Array(pattern), n = Array(name)
        // Classic wildcard matching with backtracking to the last `*`.
        var pi = 0, ni = 0, star = -1, mark = 0
        while ni < n.count {
            if pi < p.count, p[pi] != "*", p[pi] == n[ni] {
                pi += 1
                ni += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ni
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ni = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
