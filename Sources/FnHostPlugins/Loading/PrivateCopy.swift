import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// Copies a plugin file to a private, content-addressed path before anything loads it, so the
/// user may overwrite, `cp` over or delete the file in `functions/` at any time, and a loaded
/// image is never modified in place. Identical content maps to the same path.
public enum PrivateCopy {
    /// Why the copy failed.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads `source` once, writes `<directory>/<sha256>-<file name>` (write, then rename) unless
    /// it exists, and returns that path. `directory` is created with mode 0700.
    public static func make(of source: String, in directory: String) throws(Error) -> String {
        let bytes = try read(source)
        let name = source.split(separator: "/").last.map(String.init) ?? "plugin.so"
        return try store(bytes, name: name, in: directory)
    }

    /// Writes `bytes` to `<directory>/<sha256>-<name>` (write, then rename) unless it exists, and
    /// returns that path: the same content always gets the same path.
    public static func store(_ bytes: [UInt8], name: String, in directory: String) throws(Error) -> String {
        let digest = sha256Hex(bytes)
        try makeDirectory(directory)
        let target = "\(directory)/\(digest)-\(name)"
        if access(target, R_OK) == 0 { return target }
        let temp = "\(target).tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o500)
        guard fd >= 0 else { throw Error(description: "cannot write \(temp): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        close(fd)
        guard ok, rename(temp, target) == 0 else {
            unlink(temp)
            throw Error(description: "cannot write \(target): \(String(cString: strerror(errno)))")
        }
        return target
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

    static func makeDirectory(_ path: String) throws(Error) {
        var partial = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            partial += "/" + part
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw Error(description: "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Lower-case hex SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        bytes.withUnsafeBytes { raw in
            _ = EVP_Digest(raw.baseAddress, raw.count, &digest, &size, EVP_sha256(), nil)
        }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
