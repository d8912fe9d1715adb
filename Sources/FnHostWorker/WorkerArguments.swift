/// The command line of a worker process, as the host writes it (`WorkerProcess.spawn`):
/// `[worker] --fd N --plugin-path PATH --plugin-name NAME [--log-level L] [--threads T]`.
///
/// A leading `worker` (fnhost's hidden subcommand) is accepted, so the host passes the same
/// arguments to `fnhost-worker` and to `fnhost`. Every option takes a value; an unknown option,
/// a missing value or a missing required option is an error naming it.
public struct WorkerArguments: Sendable, Equatable {
    public var fd: Int32
    public var pluginPath: String
    public var pluginName: String
    /// Python's numeric log levels (10 debug ... 50 critical).
    public var logLevel: Int32 = 20
    /// Tasks run at once on threads of the process (1: prefork).
    public var threads: Int = 1

    public init(fd: Int32, pluginPath: String, pluginName: String, logLevel: Int32 = 20, threads: Int = 1) {
        self.fd = fd
        self.pluginPath = pluginPath
        self.pluginName = pluginName
        self.logLevel = logLevel
        self.threads = threads
    }

    public static let usage = "usage: fnhost-worker --fd N --plugin-path PATH --plugin-name NAME [--log-level L] [--threads T]"
        + " (started by `fnhost serve`, not by hand)"

    /// Why the command line was refused.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public static func parse(_ arguments: [String]) -> Result<WorkerArguments, Error> {
        var rest = arguments[...]
        if rest.first == "worker" { rest = rest.dropFirst() }
        var values: [String: String] = [:]
        while let option = rest.popFirst() {
            guard ["--fd", "--plugin-path", "--plugin-name", "--log-level", "--threads"].contains(option) else {
                return .failure(Error(description: "unknown argument '\(option)'"))
            }
            guard let value = rest.popFirst() else { return .failure(Error(description: "\(option) needs a value")) }
            values[option] = value
        }
        guard let fdText = values["--fd"], let fd = Int32(fdText), fd >= 0 else {
            return .failure(Error(description: "--fd N (a descriptor number) is required"))
        }
        guard let path = values["--plugin-path"] else { return .failure(Error(description: "--plugin-path is required")) }
        guard let name = values["--plugin-name"] else { return .failure(Error(description: "--plugin-name is required")) }
        var parsed = WorkerArguments(fd: fd, pluginPath: path, pluginName: name)
        if let text = values["--log-level"] {
            guard let level = Int32(text) else { return .failure(Error(description: "--log-level must be a number, not '\(text)'")) }
            parsed.logLevel = level
        }
        if let text = values["--threads"] {
            guard let threads = Int(text), threads >= 1 else { return .failure(Error(description: "--threads must be 1 or more, not '\(text)'")) }
            parsed.threads = threads
        }
        return .success(parsed)
    }
}
