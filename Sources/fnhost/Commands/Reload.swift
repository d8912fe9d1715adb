import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost reload`: asks the `fnhost serve` of a functions directory to reload it now (the same
/// as sending it SIGHUP). The host probes each new or changed plugin before serving it; a plugin
/// that fails keeps its previous version serving. See the host's log for the outcome.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running fnhost serve of a functions directory to reload its plugins (like SIGHUP).")

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let file = try plugins.loadConfigFile()
        let directory = try plugins.functionsDirectory(file)
        let pidFile = PidFile(stateDirectory: plugins.resolvedStateDirectory, functionsDirectory: directory)
        let pid: pid_t
        switch pidFile.runningHost() {
        case .success(let p): pid = p
        case .failure(let error): throw error
        }
        guard kill(pid, SIGHUP) == 0 else {
            throw FnHostError("cannot signal fnhost serve (pid \(pid)): \(String(cString: strerror(errno)))")
        }
        print("asked fnhost serve (pid \(pid)) to reload \(directory)")
    }
}
