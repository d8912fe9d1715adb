#if canImport(Glibc)
import Glibc
#endif

/// Hides the passwords of URLs given on the command line (`--broker amqp://user:pass@host/`)
/// from other users' `ps` and `/proc/PID/cmdline`: once the arguments are parsed, each password
/// in the process's own argument strings is overwritten with `*` in place (their length, and so
/// the command line's shape, is kept). Celery's worker leaves them readable.
///
/// An environment variable (`CELERY_BROKER_URL`) or `--config` file keeps a password out of the
/// command line from the start: `/proc/PID/environ` is readable only by the same user.
enum CommandLineSecrets {
    /// Masks every URL password in the process's arguments. Call after `CommandLine.arguments`
    /// was read (the parsed values are Swift copies and keep the password).
    static func mask() {
        _ = CommandLine.arguments
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            let length = strlen(argument)
            let bytes = UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: length)
            for range in passwordRanges(in: UnsafeBufferPointer(bytes)) {
                for i in range { bytes[i] = UInt8(ascii: "*") }
            }
        }
    }

    /// Where the password of each `scheme://user:password@host` in `text` is (several URLs may
    /// share one argument, as kombu's failover lists `url1;url2` do).
    static func passwordRanges(in text: some Collection<UInt8>) -> [Range<Int>] {
        let bytes = Array(text)
        var ranges: [Range<Int>] = []
        var i = 0
        while i + 3 <= bytes.count {
            guard bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"), bytes[i + 2] == UInt8(ascii: "/") else {
                i += 1
                continue
            }
            let authorityStart = i + 3
            var end = authorityStart
            while end < bytes.count, ![UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: ";"), UInt8(ascii: ",")].contains(bytes[end]) {
                end += 1
            }
            // The userinfo ends at the authority's last "@"; its password starts after its first ":".
            if let at = bytes[authorityStart..<end].lastIndex(of: UInt8(ascii: "@")),
               let colon = bytes[authorityStart..<at].firstIndex(of: UInt8(ascii: ":")), colon + 1 < at {
                ranges.append((colon + 1)..<at)
            }
            i = end
        }
        return ranges
    }
}
