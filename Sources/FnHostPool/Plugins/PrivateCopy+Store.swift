import COpenSSL
import FnHostPlugins

#if canImport(Glibc)
import Glibc
#endif

/// The host's half of `PrivateCopy`: writing the content-addressed copies worker processes load.
/// `PrivateCopyStore` is the way in: it claims each copy it writes.
extension PrivateCopy {
    /// Writes `bytes` to `<directory>/<sha256>-<name>` (write, then rename) unless it exists, and
    /// returns that path: the same content always gets the same path.
    static func store(_ bytes: [UInt8], name: String, in directory: String) throws(PrivateCopy.Error) -> String {
        let digest = sha256Hex(bytes)
        try makeDirectory(directory)
        let target = "\(directory)/\(digest)-\(name)"
        if access(target, R_OK) == 0 { return target }
        let temp = "\(target).tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o500)
        guard fd >= 0 else { throw PrivateCopy.Error(description: "cannot write \(temp): \(String(cString: strerror(errno)))") }
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
            throw PrivateCopy.Error(description: "cannot write \(target): \(String(cString: strerror(errno)))")
        }
        return target
    }

    static func makeDirectory(_ path: String) throws(PrivateCopy.Error) {
        var partial = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            partial += "/" + part
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw PrivateCopy.Error(description: "cannot create \(partial): \(String(cString: strerror(errno)))")
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
