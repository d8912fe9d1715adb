import CFnHostSupport
import FnHostCore
import FnHostIPC
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One worker process as the host sees it: started with `posix_spawn` of `fnhost-worker`
/// (`workerExecutable()`; `fork()` is unsafe in a multithreaded Swift process), talking over a
/// socketpair, loading exactly one plugin.
///
/// Hardening (the child's part is in `WorkerMain`): it inherits no descriptor but the IPC
/// socket (fd 3) and the standard three, nor the broker and backend URLs of the host's
/// environment (`withheldVariables`); it dies with the host (parent-death signal); it cannot
/// gain privileges (`no_new_privs`); it dumps no core unless `FNHOST_WORKER_CORE_DUMPS=1`.
///
/// Lifecycle: `starting` (plugin loading) -> `ready` <-> `busy` (one task at a time) ->
/// `exited`. A reader thread receives the worker's frames and, at end of stream, reaps the
/// process and reports how it ended. Every event reaches the owner through `events`.
public final class WorkerProcess: @unchecked Sendable {
    /// What the host learns from a worker process.
    public enum Event: Sendable {
        /// The plugin loaded; its registry JSON.
        case ready(registryJSON: [UInt8])
        /// The plugin failed to load in this process.
        case loadFailed(reason: String)
        /// A task ended.
        case outcome(taskId: String, TaskOutcome)
        /// The process is gone; `how` in billiard's wording (`signal 11 (SIGSEGV)`, `exitcode 3`).
        case exited(how: String, clean: Bool)
    }

    /// Where to find the executable and what to tell it.
    public struct LaunchSpec: Sendable {
        public var executable: String
        public var pluginPath: String
        public var pluginName: String
        public var logLevel: Int32
        /// Tasks the process runs at once on threads of its own (1: prefork).
        public var threads: Int

        public init(executable: String, pluginPath: String, pluginName: String, logLevel: Int32, threads: Int = 1) {
            self.executable = executable
            self.pluginPath = pluginPath
            self.pluginName = pluginName
            self.logLevel = logLevel
            self.threads = threads
        }
    }

    /// Why a process could not be started.
    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    public let plugin: String
    /// The private copy it loaded: which version (generation) of the plugin it runs.
    public let pluginPath: String
    private let channel: FrameChannel
    private let writeLock = ConditionLock()
    private let exitLock = ConditionLock()
    private var reaped = false

    private init(pid: pid_t, plugin: String, pluginPath: String, channel: FrameChannel) {
        self.pid = pid
        self.plugin = plugin
        self.pluginPath = pluginPath
        self.channel = channel
    }

    /// The path of the running fnhost executable.
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The executable worker processes run: `fnhost-worker` next to the running fnhost (a small
    /// program without Foundation, YAML, OpenSSL or broker clients: about half a worker's
    /// memory), or, where it was not built (`swift build --product fnhost` alone), fnhost
    /// itself, whose hidden `worker` subcommand runs the same loop. Both take the same arguments.
    public static func workerExecutable() -> String {
        let current = currentExecutable()
        guard let slash = current.lastIndex(of: "/") else { return current }
        let worker = String(current[...slash]) + "fnhost-worker"
        return access(worker, X_OK) == 0 ? worker : current
    }

    /// Starts a worker process; `events` is called from its reader thread, in order, ending
    /// with `.exited`.
    public static func spawn(_ spec: LaunchSpec, events: @escaping @Sendable (WorkerProcess, Event) -> Void) throws(SpawnError) -> WorkerProcess {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SpawnError(description: "socketpair failed: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The child's end becomes fd 3 (dup2 clears close-on-exec), and every descriptor above
        // it is closed, close-on-exec or not (one a library opened without O_CLOEXEC included):
        // a worker inherits nothing but its IPC socket and stdin/stdout/stderr.
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        fnhost_spawn_addclosefrom(&actions, 4)
        let args = [spec.executable, "worker", "--fd", "3", "--plugin-path", spec.pluginPath, "--plugin-name", spec.pluginName,
                    "--log-level", String(spec.logLevel), "--threads", String(spec.threads)]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A plugin that crashes its worker must end as WorkerLostError at once: Swift's crash
        // backtracer (seconds of symbolication, or a hang without a terminal) is off in
        // workers unless the user asked for it with SWIFT_BACKTRACE.
        var env: [UnsafeMutablePointer<CChar>?] = []
        var i = 0
        var hasBacktraceSetting = false
        while let entry = environ[i] {
            i += 1
            if strncmp(entry, "SWIFT_BACKTRACE=", 16) == 0 { hasBacktraceSetting = true }
            // A worker needs no broker or backend credentials: those settings stay in the host.
            if Self.withheldVariables.contains(where: { strncmp(entry, $0, strlen($0)) == 0 }) { continue }
            env.append(strdup(entry))
        }
        if !hasBacktraceSetting { env.append(strdup("SWIFT_BACKTRACE=enable=no")) }
        env.append(nil)
        defer { env.forEach { free($0) } }
        // On the one long-lived spawn thread: the worker's parent-death signal follows the
        // thread that spawned it (see SpawnThread).
        let (rc, pid): (Int32, pid_t) = SpawnThread.shared.perform {
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, spec.executable, &actions, nil, &argv, &env)
            return (rc, pid)
        }
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw SpawnError(description: "posix_spawn \(spec.executable) failed: \(String(cString: strerror(rc)))")
        }
        let process = WorkerProcess(pid: pid, plugin: spec.pluginName, pluginPath: spec.pluginPath, channel: FrameChannel(fd: fds[0]))
        startDetachedThread(name: "fnhost-w\(pid)") { process.readLoop(events) }
        return process
    }

    /// Settings (`NAME=` prefixes) that may hold secrets and that no worker needs: the host
    /// keeps them out of its workers' environment.
    static let withheldVariables = ["CELERY_BROKER_URL=", "CELERY_RESULT_BACKEND=", "FNHOST_BROKER_URL=", "FNHOST_RESULT_BACKEND="]

    /// Sends a task; false when the process is gone (its `.exited` event follows).
    @discardableResult
    public func run(_ task: Frame.RunTask) -> Bool {
        writeLock.withLock { channel.send(.run(task)) }
    }

    /// Asks the process to call `fnhost_plugin_fini` and exit.
    public func shutdown() {
        _ = writeLock.withLock { channel.send(.shutdown) }
    }

    /// Kills the process at once (hard time limit, shutdown timeout).
    public func kill() {
        _ = Glibc.kill(pid, SIGKILL)
    }

    private func readLoop(_ events: @escaping @Sendable (WorkerProcess, Event) -> Void) {
        while let frame = channel.receive() {
            switch frame {
            case .ready(let json): events(self, .ready(registryJSON: json))
            case .loadFailed(let reason): events(self, .loadFailed(reason: reason))
            case .outcome(let id, let outcome): events(self, .outcome(taskId: id, outcome))
            case .run, .shutdown: break
            }
        }
        // Under the write lock: a `run` or `shutdown` racing the end of the stream must not
        // write to the descriptor number after it is closed (it may name a new socket by then).
        writeLock.withLock { channel.close() }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exitLock.withLock {
            reaped = true
            exitLock.broadcast()
        }
        events(self, .exited(how: Self.describe(status), clean: fnhost_wifexited(status) != 0 && fnhost_wexitstatus(status) == 0))
    }

    /// Whether the process has exited and been reaped (set before `.exited` is reported).
    public var hasExited: Bool { exitLock.withLock { reaped } }

    /// Waits until the process has exited and been reaped, up to `timeout` seconds.
    @discardableResult
    public func waitForExit(timeout: Double) -> Bool {
        let deadline = monotonicNow() + timeout
        return exitLock.withLock {
            while !reaped { if !exitLock.wait(until: deadline) { return reaped } }
            return true
        }
    }

    /// billiard's wording for how a process ended.
    static func describe(_ status: Int32) -> String {
        if fnhost_wifsignaled(status) != 0 {
            let sig = fnhost_wtermsig(status)
            return "signal \(sig) (\(signalName(sig)))"
        }
        return "exitcode \(fnhost_wexitstatus(status))"
    }

    static func signalName(_ sig: Int32) -> String {
        switch sig {
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGKILL: return "SIGKILL"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGILL: return "SIGILL"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        default: return "SIG\(sig)"
        }
    }
}
