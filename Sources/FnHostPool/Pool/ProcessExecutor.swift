import CeleryProtocol
import FnHostCore
import FnHostIPC
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Runs tasks in worker processes: one pool per plugin, at most `maxProcesses` processes in all,
/// each running up to `tasksPerProcess` tasks at once: 1 is Celery's prefork (the default), more
/// is the threads pool (one process runs several tasks on threads of its own).
///
/// A task goes to a process of its plugin's pool with room; otherwise a new process is started,
/// first stopping an idle process of another pool when the cap is reached. A process that dies
/// is reaped and each task it ran ends as `workerLost`, except the one whose hard time limit made
/// the host kill it, which ends as `timeLimitExceeded` (in the threads pool a hard limit replaces
/// the whole process, and its other tasks are redelivered or failed per their own policy). The
/// next task of that plugin starts a fresh process. The host never goes down with a plugin.
///
/// Processes are retired gracefully, never in the middle of a task: after a task's outcome
/// when `recycle` says so (tasks run, resident memory read from `/proc`), and when idle for
/// longer than `idle` allows (so a function's pool shrinks to zero). A retired process gets no
/// more work and is sent `.shutdown` (its plugin's `fnhost_plugin_fini` runs); it still counts
/// against the cap until it has exited, and is killed if it has not within `retireTimeout`.
///
/// Hot reload: a task runs only in a process of its plugin's serving generation (started from
/// the spec `launch` gives now). `retireOutdated` stops giving work to the others; each exits
/// once the tasks it holds have ended, so a reload never interrupts or repeats a task.
///
/// Threading: `execute` from any thread; process events arrive on each process's reader thread;
/// with an idle timeout, a reaper thread reviews idle processes until `shutdown`.
public final class ProcessExecutor: TaskExecutor, @unchecked Sendable {
    struct RunningTask {
        let request: TaskRequest
        let completion: @Sendable (TaskOutcome) -> Void
        let serial: Int
        /// When its hard time limit is reached (monotonic seconds), if it has one.
        let deadline: Double?
    }

    struct Slot {
        let process: WorkerProcess
        /// Tasks running in it, by task id.
        var tasks: [String: RunningTask] = [:]
        /// The task whose hard time limit made the host kill the process, and the limit.
        var timeLimitHit: (serial: Int, seconds: Double)?
        /// Killed by `revoke(terminate=True)`.
        var terminated = false
        /// Gets no more work (recycled, idle, evicted, or the executor is closing).
        var stopping = false
        /// Has been sent `.shutdown`.
        var retired = false
        var tasksRun = 0
        /// When it last finished a task, or was started (monotonic seconds).
        var idleSince: Double

        init(process: WorkerProcess, idleSince: Double = monotonicNow()) {
            self.process = process
            self.idleSince = idleSince
        }
    }

    private let launch: @Sendable (String) -> WorkerProcess.LaunchSpec?
    private let isCurrent: @Sendable (WorkerProcess) -> Bool
    let logger: Logger
    private let recyclePolicy: RecyclePolicy
    private let idlePolicy: IdlePolicy
    private let retireTimeout: Double
    let lock = ConditionLock()
    var slots: [pid_t: Slot] = [:]
    private var waiting: [(request: TaskRequest, completion: @Sendable (TaskOutcome) -> Void)] = []
    private var serial = 0
    var closed = false
    /// The earliest hard time limit the watcher sleeps until (infinity: none); a task with an
    /// earlier one wakes it (`ProcessExecutor+TimeLimits`).
    var timeLimitWake = Double.infinity
    var timeLimitWatcherStarted = false
    /// Told of every worker process recycled (`.recycled`) or killed/lost (`.killed`), with a
    /// reason (`max_tasks_per_child`, `time_limit`, `terminate`...): metrics. Set before use.
    nonisolated(unsafe) public var lifecycle: (@Sendable (LifecycleEvent) -> Void)?
    /// The most worker processes alive at once.
    public var maxProcesses: Int { lock.withLock { processCap } }
    var processCap: Int
    /// Tasks one process runs at once: 1 for prefork, more for the threads pool.
    public let tasksPerProcess: Int

    /// `launch` gives the spec for a plugin file name (`nil`: the plugin is unknown); a task
    /// runs only in a process started from the spec `launch` gives now (its generation).
    /// `isCurrent` says whether a process still belongs to its plugin's serving generation:
    /// one that does not gets no more work and exits once idle (`retireOutdated`, hot reload).
    /// `recycle` replaces a process after a task, `idle` shuts idle processes down, and a
    /// process told to exit for either reason is killed after `retireTimeout` seconds.
    public init(maxProcesses: Int, tasksPerProcess: Int = 1, recycle: RecyclePolicy = .never, idle: IdlePolicy = .never,
                retireTimeout: Double = 10, logger: Logger,
                isCurrent: @escaping @Sendable (WorkerProcess) -> Bool = { _ in true },
                launch: @escaping @Sendable (String) -> WorkerProcess.LaunchSpec?) {
        self.isCurrent = isCurrent
        self.processCap = max(1, maxProcesses)
        self.tasksPerProcess = max(1, tasksPerProcess)
        self.recyclePolicy = recycle
        self.idlePolicy = idle
        self.retireTimeout = retireTimeout
        self.logger = logger
        self.launch = launch
        if idle.idleTimeout != nil {
            startDetachedThread(name: "fnhost-idle") { [weak self] in self?.reapIdleProcesses() }
        }
    }

    /// Takes over an already running, ready process (a plugin probe) as an idle worker. One
    /// that has exited meanwhile is not taken (its `.exited` came before it had a slot).
    public func adopt(_ process: WorkerProcess) {
        let keep = lock.withLock { () -> Bool in
            guard !closed, slots.count < processCap, !process.hasExited else { return false }
            slots[process.pid] = Slot(process: process)
            return true
        }
        if !keep { process.shutdown() }
    }

    /// The event handler every process of this executor reports to.
    public var events: @Sendable (WorkerProcess, WorkerProcess.Event) -> Void {
        { [weak self] process, event in self?.handle(process, event) }
    }

    public func execute(_ request: TaskRequest, completion: @escaping @Sendable (TaskOutcome) -> Void) {
        lock.withLock { waiting.append((request, completion)) }
        assign()
    }

    /// Hands waiting tasks to idle processes, starting processes as needed. A process counts
    /// against the cap until it has exited, so at the cap an idle process of another plugin is
    /// asked to exit first and the task is placed when it has.
    func assign() {
        var toRun: [(WorkerProcess, TaskRequest)] = []
        var toStop: [WorkerProcess] = []
        var failed: [(@Sendable (TaskOutcome) -> Void, TaskException)] = []
        lock.withLock {
            guard !closed else { return }
            var earliestDeadline = Double.infinity
            defer { if earliestDeadline < timeLimitWake { wakeTimeLimitWatcher() } }
            var index = 0
            while index < waiting.count {
                let plugin = waiting[index].request.function.plugin
                let id = waiting[index].request.id
                let spec = launch(plugin)
                if let spec, let pid = slots.first(where: {
                    $0.value.process.plugin == plugin && $0.value.process.pluginPath == spec.pluginPath && !$0.value.stopping
                        && $0.value.tasks.count < tasksPerProcess && $0.value.tasks[id] == nil
                })?.key {
                    let item = waiting.remove(at: index)
                    serial += 1
                    let deadline = item.request.hardTimeLimit.map { monotonicNow() + $0 }  // no clock read without a limit
                    if let deadline { earliestDeadline = min(earliestDeadline, deadline) }
                    slots[pid]!.tasks[id] = RunningTask(request: item.request, completion: item.completion, serial: serial, deadline: deadline)
                    toRun.append((slots[pid]!.process, item.request))
                    continue
                }
                if slots.count >= processCap {
                    if let victim = slots.first(where: { $0.value.tasks.isEmpty && !$0.value.stopping && $0.value.process.plugin != plugin })?.key {
                        slots[victim]!.stopping = true
                        slots[victim]!.retired = true
                        toStop.append(slots[victim]!.process)
                    }
                    index += 1
                    continue
                }
                guard let spec else {
                    failed.append((waiting.remove(at: index).completion, TaskException(type: "RuntimeError", module: "builtins", message: "unknown plugin \(plugin)")))
                    continue
                }
                do {
                    let process = try WorkerProcess.spawn(spec, events: events)
                    logger.debug("started worker process \(process.pid) for \(plugin)")
                    slots[process.pid] = Slot(process: process)
                } catch {
                    logger.error("cannot start a worker process for \(plugin): \(error)")
                    failed.append((waiting.remove(at: index).completion, TaskException(type: "RuntimeError", module: "builtins", message: "cannot start a worker process: \(error)")))
                }
            }
        }
        for process in toStop { process.shutdown() }
        for (process, request) in toRun { start(request, on: process) }
        for (completion, exception) in failed { completion(.failure(exception, traceback: nil)) }
    }

    private func failWaiting(plugin: String, _ exception: TaskException) {
        let failed: [@Sendable (TaskOutcome) -> Void] = lock.withLock {
            let mine = waiting.filter { $0.request.function.plugin == plugin }.map(\.completion)
            waiting.removeAll { $0.request.function.plugin == plugin }
            return mine
        }
        for completion in failed { completion(.failure(exception, traceback: nil)) }
    }

    private func start(_ request: TaskRequest, on process: WorkerProcess) {
        let task = Frame.RunTask(taskId: request.id, taskName: request.name, retries: request.message.retries,
                                 softTimeLimit: request.softTimeLimit, body: request.message.body,
                                 memoryLimit: request.function.options.memoryLimit)
        // A failed send means the process is gone; its `.exited` event settles the task.
        process.run(task)
    }

    func hardLimitReached(pid: pid_t, serial: Int, seconds: Double) {
        let process: WorkerProcess? = lock.withLock {
            guard let slot = slots[pid], slot.tasks.values.contains(where: { $0.serial == serial }), slot.timeLimitHit == nil else { return nil }
            slots[pid]!.timeLimitHit = (serial, seconds)
            slots[pid]!.stopping = true
            return slot.process
        }
        guard let process else { return }
        logger.warning("hard time limit (\(seconds)s) exceeded: killing worker process \(pid)")
        lifecycle?(.killed(reason: "time_limit"))
        process.kill()
    }

    private func handle(_ process: WorkerProcess, _ event: WorkerProcess.Event) {
        switch event {
        case .ready:
            return
        case .loadFailed(let reason):
            // A probe not (yet) adopted: the loader that started it reports why.
            guard lock.withLock({ slots[process.pid] != nil }) else { return }
            logger.error("plugin \(process.plugin) failed to load in worker process \(process.pid): \(reason)")
            let tasks = lock.withLock { () -> [RunningTask] in
                let tasks = slots[process.pid].map { Array($0.tasks.values) } ?? []
                slots[process.pid]?.tasks = [:]
                return tasks
            }
            for task in tasks {
                task.completion(.failure(TaskException(type: "RuntimeError", module: "builtins",
                                                       message: "plugin \(process.plugin) failed to load: \(reason)"), traceback: nil))
            }
            failWaiting(plugin: process.plugin, TaskException(type: "RuntimeError", module: "builtins", message: "plugin \(process.plugin) failed to load: \(reason)"))
        case .outcome(let id, let outcome):
            // Read before the lock (a prefork process is idle now, waiting for its next frame).
            let rss = recyclePolicy.needsResidentMemory ? ResidentMemory.kilobytes(of: process.pid) : nil
            // One critical section: a process to recycle is never given more work by `assign`;
            // it is told to exit once its last running task has ended, never in the middle of one.
            let settled: (completion: @Sendable (TaskOutcome) -> Void, recycle: RecyclePolicy.Reason?, retireNow: Bool)? = lock.withLock {
                guard var slot = slots[process.pid], let t = slot.tasks.removeValue(forKey: id) else { return nil }
                slot.tasksRun += 1
                if slot.tasks.isEmpty { slot.idleSince = monotonicNow() }
                let reason = closed || slot.stopping ? nil : recyclePolicy.shouldRecycle(tasksRun: slot.tasksRun, rssKB: rss)
                if reason != nil || !isCurrent(process) { slot.stopping = true }
                let retireNow = slot.stopping && slot.tasks.isEmpty && !slot.retired && !closed && slot.timeLimitHit == nil
                if retireNow { slot.retired = true }
                slots[process.pid] = slot
                return (t.completion, reason, retireNow)
            }
            guard let settled else {
                logger.error("worker process \(process.pid) reported an outcome for a task it was not running (\(id))")
                return
            }
            if let reason = settled.recycle {
                logger.info("recycling worker process \(process.pid) (\(process.plugin)): \(reason)")
                lifecycle?(.recycled(reason: reason.metricLabel))
            }
            if settled.retireNow { retire(process) }
            settled.completion(outcome)
            assign()
        case .exited(let how, let clean):
            let slot = lock.withLock { slots.removeValue(forKey: process.pid) }
            if let slot, !slot.tasks.isEmpty {
                for task in slot.tasks.values.sorted(by: { $0.serial < $1.serial }) {
                    if let hit = slot.timeLimitHit, hit.serial == task.serial {
                        task.completion(.timeLimitExceeded(seconds: hit.seconds))
                    } else {
                        logger.error("worker process \(process.pid) (\(process.plugin)) exited prematurely: \(how), while running \(task.request.name)[\(task.request.id)]", metadata: .task(task.request.name, task.request.id))
                        if !slot.terminated { lifecycle?(.killed(reason: "crashed")) }
                        if let limit = task.request.function.options.memoryLimit, !slot.terminated {
                            // Under RLIMIT_AS an allocation that fails most often ends a plugin
                            // that does not check it: say so, and do not redeliver a task that
                            // would only fail the same way.
                            task.completion(.failure(TaskException(type: "MemoryError", module: "builtins",
                                message: "the worker process ended (\(how)) while the task ran under its memory_limit of \(Self.describeBytes(limit)): it most likely ran out of memory"),
                                traceback: nil))
                        } else {
                            task.completion(.workerLost(how: how))
                        }
                    }
                }
            } else if let slot, !clean && !slot.stopping {
                logger.warning("idle worker process \(process.pid) (\(process.plugin)) exited: \(how)")
            }
            lock.withLock { lock.broadcast() }
            if !lock.withLock({ closed }) { assign() }
        }
    }

    /// `268435456` as `256MB`, for messages.
    static func describeBytes(_ n: Int) -> String {
        if n % (1 << 30) == 0 { return "\(n >> 30)GB" }
        if n % (1 << 20) == 0 { return "\(n >> 20)MB" }
        if n % (1 << 10) == 0 { return "\(n >> 10)KB" }
        return "\(n) bytes"
    }

    /// Sends `.shutdown` to a process already marked `stopping`, and kills it if it has not
    /// exited within `retireTimeout` (a plugin whose `fnhost_plugin_fini` hangs).
    private func retire(_ process: WorkerProcess) {
        process.shutdown()
        let timeout = retireTimeout
        // Weakly: a process that exited is freed at once, not held (with its read buffer)
        // until the timer fires.
        startTimer(after: timeout) { [weak self, weak process] in
            guard let self, let process else { return }
            let stuck = lock.withLock { slots[process.pid]?.process === process }
            if stuck {
                logger.warning("worker process \(process.pid) (\(process.plugin)) did not exit within \(timeout)s of shutdown: killing it")
                lifecycle?(.killed(reason: "retire_timeout"))
                process.kill()
            }
        }
    }

    /// The reaper thread: shuts down processes idle for longer than the idle timeout (keeping
    /// `idlePolicy.minProcesses` alive), waking when the next one expires and at least every second.
    private func reapIdleProcesses() {
        while true {
            let victims: [(WorkerProcess, Double)]? = lock.withLock {
                guard !closed else { return nil }
                let now = monotonicNow()
                let idle = slots.values.filter { $0.tasks.isEmpty && !$0.stopping }
                    .map { IdlePolicy.IdleProcess(pid: $0.process.pid, idleSince: $0.idleSince) }
                let alive = slots.values.filter { !$0.stopping }.count
                let review = idlePolicy.review(idle: idle, alive: alive, now: now)
                if review.reap.isEmpty {
                    _ = lock.wait(until: min(review.nextReview ?? now + 1, now + 1))
                    return []
                }
                return review.reap.map { pid in
                    slots[pid]!.stopping = true
                    slots[pid]!.retired = true
                    return (slots[pid]!.process, now - slots[pid]!.idleSince)
                }
            }
            guard let victims else { return }
            for (process, seconds) in victims {
                let timeout = idlePolicy.idleTimeout ?? 0
                logger.info("stopping idle worker process \(process.pid) (\(process.plugin)): idle for \(Self.format(seconds))s (idle timeout \(Self.format(timeout))s)")
                lifecycle?(.recycled(reason: "idle"))
                retire(process)
            }
        }
    }

    private static func format(_ seconds: Double) -> String {
        let tenths = (seconds * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
    }

    /// Asks every process to exit, waits up to `timeout` seconds, then kills the rest.
    public func shutdown(timeout: Double) {
        let processes = lock.withLock { () -> [WorkerProcess] in
            closed = true
            lock.broadcast()
            for pid in slots.keys { slots[pid]!.stopping = true }
            return slots.values.map(\.process)
        }
        for p in processes { p.shutdown() }
        let deadline = monotonicNow() + timeout
        let remaining = lock.withLock { () -> [WorkerProcess] in
            while !slots.isEmpty { if !lock.wait(until: deadline) { break } }
            return slots.values.map(\.process)
        }
        for p in remaining {
            logger.warning("worker process \(p.pid) did not exit in time: killing it")
            lifecycle?(.killed(reason: "shutdown"))
            p.kill()
        }
        lock.withLock {
            let end = monotonicNow() + 2
            while !slots.isEmpty { if !lock.wait(until: end) { break } }
        }
    }

    /// Processes alive now, by plugin (for `stats` and tests).
    public var processCount: Int { lock.withLock { slots.count } }

    /// Processes alive now that loaded `plugin` from `path` (one generation of it).
    /// The private copies the worker processes alive now were started from.
    public var pluginPaths: Set<String> {
        lock.withLock { Set(slots.values.map(\.process.pluginPath)) }
    }

    public func processCount(plugin: String, path: String) -> Int {
        lock.withLock { slots.values.filter { $0.process.plugin == plugin && $0.process.pluginPath == path }.count }
    }

    /// Hot reload: every process no longer `isCurrent` gets no more work; the idle ones are
    /// told to exit now, the busy ones once their running tasks have ended (never in the
    /// middle of one). Waiting tasks are placed again, on the current generation.
    public func retireOutdated() {
        let idle: [WorkerProcess] = lock.withLock {
            var now: [WorkerProcess] = []
            for (pid, slot) in slots where !slot.stopping && !isCurrent(slot.process) {
                slots[pid]!.stopping = true
                if slot.tasks.isEmpty && !slot.retired && slot.timeLimitHit == nil {
                    slots[pid]!.retired = true
                    now.append(slot.process)
                }
            }
            return now
        }
        for process in idle {
            logger.info("retiring worker process \(process.pid) (\(process.plugin)): a newer generation serves it")
            retire(process)
        }
        assign()
    }
}
