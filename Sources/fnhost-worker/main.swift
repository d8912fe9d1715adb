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

exit(WorkerMain.main(Array(CommandLine.arguments.dropFirst())))
