import ArgumentParser
import FnHostWorker

#if canImport(Glibc)
import Glibc
#endif

/// The hidden subcommand a worker process runs: the host starts it with `posix_spawn`.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run as a worker process of a host (internal).", shouldDisplay: false)

    /// Everything after `worker`, read by `WorkerArguments` (the one definition of a worker's
    /// command line, shared with `fnhost-worker`).
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws {
        Glibc.exit(WorkerMain.main(arguments))
    }
}
