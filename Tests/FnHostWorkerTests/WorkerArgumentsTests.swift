import FnHostWorker
import Testing

@Suite struct WorkerArgumentsTests {
    @Test func readsWhatTheHostWrites() throws {
        // The exact command line WorkerProcess.spawn writes, `worker` subcommand included.
        let parsed = try WorkerArguments.parse(["worker", "--fd", "3", "--plugin-path", "/s/ab-libmath.so", "--plugin-name", "libmath.so",
                                                "--log-level", "10", "--threads", "4"]).get()
        #expect(parsed == WorkerArguments(fd: 3, pluginPath: "/s/ab-libmath.so", pluginName: "libmath.so", logLevel: 10, threads: 4))
    }

    @Test func defaultsAndNoSubcommand() throws {
        let parsed = try WorkerArguments.parse(["--fd", "3", "--plugin-path", "p", "--plugin-name", "n"]).get()
        #expect(parsed.logLevel == 20)
        #expect(parsed.threads == 1)
    }

    @Test(arguments: [
        (["--fd", "3", "--plugin-path", "p"], "--plugin-name is required"),
        (["--plugin-path", "p", "--plugin-name", "n"], "--fd N (a descriptor number) is required"),
        (["--fd", "x", "--plugin-path", "p", "--plugin-name", "n"], "--fd N (a descriptor number) is required"),
        (["--fd", "3", "--plugin-path"], "--plugin-path needs a value"),
        (["--fd", "3", "--bogus", "1"], "unknown argument '--bogus'"),
        (["--fd", "3", "--plugin-path", "p", "--plugin-name", "n", "--threads", "0"], "--threads must be 1 or more, not '0'"),
        (["--fd", "3", "--plugin-path", "p", "--plugin-name", "n", "--log-level", "loud"], "--log-level must be a number, not 'loud'"),
    ])
    func refusesWithTheReason(arguments: [String], reason: String) {
        guard case .failure(let error) = WorkerArguments.parse(arguments) else {
            Issue.record("accepted \(arguments)")
            return
        }
        #expect(error.description == reason)
    }
}
