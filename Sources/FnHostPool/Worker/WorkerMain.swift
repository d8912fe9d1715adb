import CFnHostSupport
import CeleryProtocol
import FnHostCore
import FnHostPlugins

#if canImport(Glibc)
import Glibc
#endif

/// The main loop of a worker process (`fnhost worker`, started by the host with `posix_spawn`).
///
/// Loads one plugin from its private copy, reports its registry (or why it failed), then runs
/// one task at a time as the host asks, until told to shut down or the host goes away. Dies
/// with the host (parent-death signal), so no worker outlives it.
public enum WorkerMain {
    /// Runs the worker on `fd` (its end of the socketpair); returns the exit status.
    public static func run(fd: Int32, pluginPath: String, pluginName: String, logLevel: Int32) -> Int32 {
        _ = fnhost_set_parent_death_signal(SIGKILL)
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
        while let frame = channel.receive() {
            switch frame {
            case .run(let task):
                let outcome: TaskOutcome
                do {
                    let body = try TaskBody(json: task.body)
                    outcome = plugin.run(taskName: task.taskName, taskId: task.taskId, retries: task.retries, body: body,
                                         softTimeLimit: task.softTimeLimit)
                } catch {
                    var problem = error
                    problem.taskId = task.taskId
                    outcome = .rejected(problem)
                }
                guard channel.send(.outcome(taskId: task.taskId, outcome)) else { return finish(plugin) }
            case .shutdown:
                return finish(plugin)
            default:
                WorkerLog.write("error unexpected frame from the host; exiting")
                return finish(plugin)
            }
        }
        return finish(plugin)
    }

    private static func finish(_ plugin: LoadedPlugin) -> Int32 {
        plugin.finish()
        return 0
    }
}
