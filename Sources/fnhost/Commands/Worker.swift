import ArgumentParser
import FnHostWorker

#if canImport(Glibc)
import Glibc
#endif

/// The hidden subcommand a worker process runs: the host starts it with `posix_spawn`.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run as a worker process of a host (internal).", shouldDisplay: false)

    @Option(name: .long) var fd: Int32
    @Option(name: .customLong("plugin-path")) var pluginPath: String
    @Option(name: .customLong("plugin-name")) var pluginName: String
    @Option(name: .customLong("log-level")) var logLevel: Int32 = 20
    @Option(name: .long) var threads: Int = 1

    func run() throws {
        Glibc.exit(WorkerMain.run(fd: fd, pluginPath: pluginPath, pluginName: pluginName, logLevel: logLevel, threads: threads))
    }
}
