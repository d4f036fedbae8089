import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a configuration file's bytes. Only regular files (symbolic links followed) up to
/// `maximumSize` are read, so `--config /dev/zero` or a mistyped path to a huge file is an
/// error instead of a process that fills its memory.
enum ConfigurationFileReader {
    static let maximumSize = 16 << 20

    enum Outcome {
        case missing
        case contents([UInt8])
        case unreadable(String)
    }

    static func read(_ path: String) -> Outcome {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return .missing }
            return .unreadable("cannot read file: \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return .unreadable("cannot read file: not a regular file") }
        guard Int(status.st_size) <= Self.maximumSize else {
            return .unreadable("cannot read file: larger than \(Self.maximumSize >> 20) MiB")
        }
        guard let data = FileManager.default.contents(atPath: path) else { return .unreadable("cannot read file") }
        guard data.count <= Self.maximumSize else { return .unreadable("cannot read file: larger than \(Self.maximumSize >> 20) MiB") }
        return .contents(Array(data))
    }
}
