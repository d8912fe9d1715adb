import FnHostWorker

#if canImport(Glibc)
import Glibc
#endif

// fnhost-worker: the worker process a host starts for one plugin (`posix_spawn`, never by hand).
// It links only what running a plugin needs, so each worker costs little memory; the host
// falls back to `fnhost worker` (the same loop) where this executable was not built.
//
//   fnhost-worker [worker] --fd N --plugin-path PATH --plugin-name NAME [--log-level L] [--threads T]
//
// A leading `worker` is accepted so the host passes the same arguments to either executable.

switch WorkerArguments.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let a):
    exit(WorkerMain.run(fd: a.fd, pluginPath: a.pluginPath, pluginName: a.pluginName, logLevel: a.logLevel, threads: a.threads))
case .failure(let error):
    let text = "fnhost-worker: \(error.description)\n\(WorkerArguments.usage)\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    exit(64)
}
