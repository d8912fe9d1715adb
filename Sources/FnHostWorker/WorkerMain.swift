import CFnHostSupport
import CeleryProtocol
import FnHostCore
import FnHostIPC
import FnHostPlugins

#if canImport(Glibc)
import Glibc
#endif

/// The main loop of a worker process (`fnhost-worker`, or `fnhost worker` where that was not
/// built; started by the host with `posix_spawn`).
///
/// Loads one plugin from its private copy, reports its registry (or why it failed), then runs
/// tasks as the host asks, until told to shut down or the host goes away: one at a time
/// (prefork), or on `threads` threads of its own (the threads pool). At shutdown it lets running
/// tasks finish, then calls `fnhost_plugin_fini`. Dies with the host (parent-death signal), so
/// no worker outlives it.
public enum WorkerMain {
    /// The worker's command line (`WorkerArguments`, without the program name) parsed and run:
    /// the entry point of both `fnhost-worker` and `fnhost worker`. A command line it cannot
    /// read is answered on stderr with the reason and the usage, and exit status 64.
    public static func main(_ arguments: [String]) -> Int32 {
        switch WorkerArguments.parse(arguments) {
        case .success(let a):
            return run(fd: a.fd, pluginPath: a.pluginPath, pluginName: a.pluginName, logLevel: a.logLevel, threads: a.threads)
        case .failure(let error):
            let text = "fnhost-worker: \(error.description)\n\(WorkerArguments.usage)\n"
            _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            return 64
        }
    }

    /// Runs the worker on `fd` (its end of the socketpair); returns the exit status.
    public static func run(fd: Int32, pluginPath: String, pluginName: String, logLevel: Int32, threads: Int = 1) -> Int32 {
        _ = fnhost_set_parent_death_signal(SIGKILL)
        harden()
        signal(SIGPIPE, SIG_IGN)
        // The host handles SIGINT/SIGTERM for the whole group; a worker finishes its task.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        WorkerLog.setPluginThreshold(logLevel)
        let channel = FrameChannel(fd: fd)
        let plugin: LoadedPlugin
        do {
            plugin = try LoadedPlugin(path: pluginPath, name: pluginName)
        } catch {
            channel.send(.loadFailed(reason: error.description))
            return 3
        }
        channel.send(.ready(registryJSON: plugin.registryJSON()))
        let runner = TaskRunner(plugin: plugin, channel: channel, threads: threads)
        while let frame = channel.receive() {
            switch frame {
            case .run(let task):
                runner.submit(task)
            case .shutdown:
                return runner.finish()
            default:
                WorkerLog.write("error unexpected frame from the host; exiting")
                return runner.finish()
            }
        }
        return runner.finish()
    }
}

extension WorkerMain {
    /// No privilege can be gained from here on (setuid binaries, file capabilities), and a
    /// crashing plugin leaves no core file (which could hold task arguments and secrets)
    /// unless `FNHOST_WORKER_CORE_DUMPS=1` asks for one.
    static func harden() {
        _ = fnhost_set_no_new_privs()
        if let v = getenv("FNHOST_WORKER_CORE_DUMPS"), String(cString: v) == "1" { return }
        _ = fnhost_set_rlimit(fnhost_rlimit_core, 0, 0)
    }
}

/// Runs tasks for the worker loop: inline (one thread) or on a fixed set of threads, sending
/// each outcome as soon as it is known. Outcome frames are written under one lock.
final class TaskRunner: @unchecked Sendable {
    private let plugin: LoadedPlugin
    private let channel: FrameChannel
    private let threads: Int
    private let lock = ConditionLock()
    private let sendLock = ConditionLock()
    private var queue: [Frame.RunTask] = []
    private var active = 0
    private var closing = false
    private var workers: [JoinableThread] = []
    private let memoryLimit = TaskMemoryLimit()

    init(plugin: LoadedPlugin, channel: FrameChannel, threads: Int) {
        self.plugin = plugin
        self.channel = channel
        self.threads = max(1, threads)
        if self.threads > 1 {
            for _ in 0..<self.threads { workers.append(startThread(name: "fnhost-task") { [self] in work() }) }
        }
    }

    func submit(_ task: Frame.RunTask) {
        guard threads > 1 else {
            execute(task)
            return
        }
        lock.withLock {
            queue.append(task)
            lock.broadcast()
        }
    }

    private func work() {
        while true {
            let task: Frame.RunTask? = lock.withLock {
                while queue.isEmpty && !closing { lock.wait() }
                if queue.isEmpty { return nil }
                active += 1
                return queue.removeFirst()
            }
            guard let task else { return }
            execute(task)
            lock.withLock {
                active -= 1
                lock.broadcast()
            }
        }
    }

    private func execute(_ task: Frame.RunTask) {
        let outcome: TaskOutcome
        do {
            let body = try TaskBody(json: task.body)
            memoryLimit.enter(task.memoryLimit)
            defer { memoryLimit.leave(task.memoryLimit) }
            outcome = plugin.run(taskName: task.taskName, taskId: task.taskId, retries: task.retries, body: body,
                                 softTimeLimit: task.softTimeLimit)
        } catch {
            var problem = error
            problem.taskId = task.taskId
            outcome = .rejected(problem)
        }
        sendLock.withLock { _ = channel.send(.outcome(taskId: task.taskId, outcome)) }
    }

    /// Lets queued and running tasks finish, then calls the plugin's `fnhost_plugin_fini`.
    func finish() -> Int32 {
        if threads > 1 {
            lock.withLock {
                closing = true
                lock.broadcast()
            }
            for thread in workers { thread.join() }
        }
        plugin.finish()
        return 0
    }
}
