#if canImport(Glibc)
import Glibc
#endif

/// Copies a plugin file to a private, content-addressed path before anything loads it, so the
/// user may overwrite, `cp` over or delete the file in `functions/` at any time, and a loaded
/// image is never modified in place. Identical content maps to the same path.
///
/// Worker processes only read (`read`); the host writes the copies (`PrivateCopyStore`, in
/// FnHostPool), so workers link neither OpenSSL nor anything else they do not use.
public enum PrivateCopy {
    /// Why the copy failed.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String

        public init(description: String) { self.description = description }
    }

    /// The whole content of `path`.
    public static func read(_ path: String) throws(Error) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}
