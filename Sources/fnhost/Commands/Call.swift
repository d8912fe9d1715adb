import ArgumentParser
import CeleryProtocol
import FnHostCore
import FnHostIPC
import FnHostPool

#if canImport(Glibc)
import Glibc
#endif

/// `fnhost call NAME [ARG...]`: runs a function once in a worker process, without a broker.
struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a function locally in a worker process and print its result as JSON.",
        discussion: """
            Each ARG is JSON: numbers as they are, strings quoted.
              fnhost call math.add 2 3                  prints 5
              fnhost call text.upper '"hello"'          prints "HELLO"
            On failure it prints ExcType: message on stderr and exits 1.
            """)

    @OptionGroup var plugins: PluginOptions

    @Argument(help: "The function's name.")
    var name: String

    @Argument(parsing: .captureForPassthrough, help: "Positional arguments, each a JSON value.")
    var args: [String] = []

    @Option(name: .long, help: "Keyword arguments as one JSON object.")
    var kwargs: String = "{}"

    func run() throws {
        var values: [JSON] = []
        for (i, text) in args.enumerated() {
            do { values.append(try JSONParser.parse(text)) } catch {
                throw ValidationError("argument \(i + 1) is not JSON: \(text) (quote strings: '\"\(text)\"')")
            }
        }
        let kw: JSON
        do { kw = try JSONParser.parse(kwargs) } catch { throw ValidationError("--kwargs is not JSON: \(error)") }
        guard case .object = kw else { throw ValidationError("--kwargs must be a JSON object") }

        let box = OutcomeBox()
        let session = try PluginSession(plugins) { process, event in box.record(pid: process.pid, event) }
        defer { session.close() }
        guard let function = session.registry[name] else {
            let known = session.registry.sorted.map(\.name).joined(separator: ", ")
            throw FnHostError("no function named '\(name)' (loaded: \(known.isEmpty ? "none" : known))")
        }
        guard let process = session.catalog.probes.first(where: { $0.plugin == function.plugin }) else {
            throw FnHostError("the plugin of '\(name)' is not running")
        }
        let id = "fnhost-call-\(getpid())"
        process.run(Frame.RunTask(taskId: id, taskName: name, retries: 0, softTimeLimit: function.options.softTimeLimit,
                                  body: TaskBody.encode(args: .array(values), kwargs: kw)))
        switch box.wait(pid: process.pid) {
        case .success(let json)?:
            print(String(decoding: json, as: UTF8.self))
        case .failure(let e, _)?:
            StandardError.write("\(e.type): \(e.message)")
            throw ExitCode(1)
        case .rejected(let problem)?:
            StandardError.write("\(problem.exception.type): \(problem.reason)")
            throw ExitCode(1)
        case .retry(let countdown, let reason)?:
            StandardError.write("Retry: the function asked to be retried\(countdown.map { " in \($0)s" } ?? ""): \(reason)")
            throw ExitCode(1)
        case .workerLost(let how)?:
            StandardError.write("WorkerLostError: Worker exited prematurely: \(how).")
            throw ExitCode(1)
        case .timeLimitExceeded(let s)?:
            StandardError.write("TimeLimitExceeded: \(s)")
            throw ExitCode(1)
        case nil:
            StandardError.write("the worker process ended without an outcome")
            throw ExitCode(1)
        }
    }
}

/// Collects the outcome (or the death) of the one task `call` runs.
final class OutcomeBox: @unchecked Sendable {
    private let lock = ConditionLock()
    private var outcomes: [pid_t: TaskOutcome] = [:]

    func record(pid: pid_t, _ event: WorkerProcess.Event) {
        lock.withLock {
            switch event {
            case .outcome(_, let outcome): outcomes[pid] = outcomes[pid] ?? outcome
            case .exited(let how, _): outcomes[pid] = outcomes[pid] ?? .workerLost(how: how)
            default: return
            }
            lock.broadcast()
        }
    }

    func wait(pid: pid_t) -> TaskOutcome? {
        lock.withLock {
            while outcomes[pid] == nil { lock.wait() }
            return outcomes[pid]
        }
    }
}

enum StandardError {
    static func write(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
