#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file a command was told to write was not written, completing "cannot write …: ".
public struct OutputFileError: Error, Equatable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { self.reason }
}

/// Writes the files commands produce (a JUnit report, editor definitions) where an operator
/// says. A regular file, or a new one, is replaced whole: written beside it under a temporary
/// name and renamed over it, so a reader never sees half a report; through a symbolic link the
/// file it points to is replaced, not the link. Anything else that is not a folder (a device
/// such as `/dev/stdout`, a FIFO) is written to in place: replacing it, as a rename does,
/// would put a regular file where `/dev/stdout` was for every later command.
public enum OutputFile {
    public static func write(_ bytes: [UInt8], toPath path: String) throws(OutputFileError) {
        var status = stat()
        if stat(path, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFREG:
                guard let target = realpath(path, nil) else { throw OutputFileError(systemReason(errno)) }
                defer { free(target) }
                try Self.replace(String(cString: target), with: bytes, mode: status.st_mode & 0o7777)
            case S_IFDIR:
                throw OutputFileError("a folder, not a file")
            default:
                try Self.writeInPlace(path, bytes)
            }
        } else if errno == ENOENT {
            try Self.replace(path, with: bytes, mode: 0o644)
        } else {
            throw OutputFileError(systemReason(errno))
        }
    }

    private static func replace(_ path: String, with bytes: [UInt8], mode: mode_t) throws(OutputFileError) {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array((folder + "." + name + ".XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { throw OutputFileError(systemReason(errno)) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        do throws(OutputFileError) {
            defer { close(descriptor) }
            try Self.writeAll(descriptor, bytes)
            guard fchmod(descriptor, mode) == 0, fsync(descriptor) == 0 else { throw OutputFileError(systemReason(errno)) }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw OutputFileError(systemReason(error))
        }
    }

    private static func writeInPlace(_ path: String, _ bytes: [UInt8]) throws(OutputFileError) {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw OutputFileError(systemReason(errno)) }
        defer { close(descriptor) }
        try Self.writeAll(descriptor, bytes)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(OutputFileError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(systemReason(errno))
            }
            written += count
        }
    }
}
