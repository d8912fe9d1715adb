import ArgumentParser
import FnHostCore
import FnHostPlugins
import FnHostPool
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Options every command that loads plugins shares: where they are, the config, the log level.
struct PluginOptions: ParsableArguments {
    @Option(name: .long, help: "The functions directory (default: functions_dir from the config, else ./functions).")
    var functions: String?

    @Option(name: .long, help: "The config file (default: ./fnhost.yml when it exists).")
    var config: String?

    @Option(name: .customLong("state-dir"), help: "Where private copies of plugins go (default: $XDG_RUNTIME_DIR/fnhost or /tmp/fnhost-<uid>).")
    var stateDirectory: String?

    @Option(name: [.customShort("l"), .long], help: "Log level: debug, info, warning, error, critical.")
    var loglevel: String = "info"

    @Flag(name: .customLong("allow-untrusted-plugins"), help: "Load plugins and manifests that other users can write, or that another user owns (development only: anyone who can write them runs code as you).")
    var allowUntrustedPlugins = false

    /// How plugins of the functions directory are found, checked, copied and probed.
    func loader(_ file: ConfigFile, threads: Int = 1) throws -> PluginLoader {
        PluginLoader(functionsDirectory: try functionsDirectory(file), stateDirectory: resolvedStateDirectory,
                     executable: WorkerProcess.workerExecutable(), logLevel: pythonLogLevel, threads: threads,
                     trust: PluginTrust(policy: allowUntrustedPlugins ? .allowUntrusted : .enforce))
    }

    /// The config file, if one is named or `./fnhost.yml` exists.
    func loadConfigFile() throws -> ConfigFile {
        if let config {
            do { return try ConfigFile.load(config) } catch { throw FnHostError(error.description) }
        }
        guard access("fnhost.yml", R_OK) == 0 else { return ConfigFile() }
        do { return try ConfigFile.load("fnhost.yml") } catch { throw FnHostError(error.description) }
    }

    /// The functions directory; an error when it does not exist or is not a directory.
    func functionsDirectory(_ file: ConfigFile) throws -> String {
        let path = functions ?? file.functionsDirectory ?? "functions"
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw FnHostError("the functions directory \(path) does not exist (use --functions DIR, or create it and put plugins (*.so) there)")
        }
        return path
    }

    var resolvedStateDirectory: String {
        if let stateDirectory { return stateDirectory }
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !runtime.isEmpty, access(runtime, W_OK) == 0 {
            return runtime + "/fnhost"
        }
        return "/tmp/fnhost-\(getuid())"
    }

    var logLevel: Logger.Level {
        get throws {
            switch loglevel.lowercased() {
            case "debug": return .debug
            case "info": return .info
            case "warning", "warn": return .warning
            case "error": return .error
            case "critical", "fatal": return .critical
            default: throw ValidationError("unknown log level '\(loglevel)' (debug, info, warning, error, critical)")
            }
        }
    }

    /// Python logging's numeric level, for plugin log calls in worker processes.
    var pythonLogLevel: Int32 {
        switch (try? logLevel) ?? .info {
        case .trace, .debug: return 10
        case .info, .notice: return 20
        case .warning: return 30
        case .error: return 40
        case .critical: return 50
        }
    }
}

/// Bootstraps swift-log once for the process (only the executable does this).
enum LogSetup {
    nonisolated(unsafe) private static var done = false

    static func bootstrap(_ level: Logger.Level, format: LogFormat = .text) -> Logger {
        if !done {
            LoggingSystem.bootstrap { label in
                var handler = FormattedLogHandler(label: label, format: format)
                handler.logLevel = level
                return handler
            }
            done = true
        }
        var logger = Logger(label: "fnhost")
        logger.logLevel = level
        return logger
    }
}

/// An error a user can act on, printed as `Error: <description>` without the usage text.
struct FnHostError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
