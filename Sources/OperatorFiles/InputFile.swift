#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file an operator named could not be read, as a code and a reason that completes
/// "cannot read …: ".
public struct InputFileError: Error, Equatable, CustomStringConvertible {
    public enum Code: Equatable, Sendable {
        /// No such file (or a path through something that is not a folder).
        case missing
        /// A folder, a FIFO, a device or a socket: what reading would block on or never end.
        case notRegularFile
        /// Larger than the reader's limit for that kind of file.
        case tooLarge
        /// Text that is not UTF-8.
        case notUTF8
        /// Any other failure of the system, named by its `strerror`.
        case unreadable
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { self.reason }
}

/// Reads the files operators name (configuration, rule scripts and their modules, test files,
/// zone files, trust anchors, resolv.conf) in one way: a regular file (a symbolic link is
/// followed) of at most `limit` bytes, or a clear error. So a path to a FIFO, `/dev/zero` or a
/// mistyped path to a huge file fails at once, instead of a command or a reload that blocks
/// or fills the memory.
public enum InputFile {
    /// The whole file's bytes.
    public static func bytes(atPath path: String, limit: Int) throws(InputFileError) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it does
        // not change how a regular file is read.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard descriptor >= 0 else {
            let error = errno
            throw InputFileError(error == ENOENT || error == ENOTDIR ? .missing : .unreadable, systemReason(error))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw InputFileError(.unreadable, systemReason(errno)) }
        if let kind = Self.kindIfNotRegular(status.st_mode) {
            throw InputFileError(.notRegularFile, "not a regular file (\(kind))")
        }
        guard Int(status.st_size) <= limit else { throw Self.tooLarge(limit) }
        // Read to the end rather than trusting the size: the file may be growing.
        var bytes = [UInt8](repeating: 0, count: min(limit, Int(status.st_size)) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                guard count <= limit else { throw Self.tooLarge(limit) }
                bytes.append(contentsOf: repeatElement(0, count: min(max(count, 4096), limit + 1 - count)))
            }
            let got = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress! + count, buffer.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw InputFileError(.unreadable, systemReason(errno))
            }
            if got == 0 { break }
            count += got
        }
        guard count <= limit else { throw Self.tooLarge(limit) }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// The whole file as UTF-8 text; an error names the line of the first byte that is not.
    public static func text(atPath path: String, limit: Int) throws(InputFileError) -> String {
        let bytes = try Self.bytes(atPath: path, limit: limit)
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        throw InputFileError(.notUTF8, "not UTF-8 text (line \(Self.lineOfFirstInvalidByte(bytes)))")
    }

    /// Limits are given in bytes and said in MiB (or KiB below one MiB).
    static func tooLarge(_ limit: Int) -> InputFileError {
        let said = limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit >> 10) KiB"
        return InputFileError(.tooLarge, "larger than \(said)")
    }

    static func kindIfNotRegular(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a file"
        }
    }

    static func lineOfFirstInvalidByte(_ bytes: [UInt8]) -> Int {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var line = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                if encoded.count == 1, encoded.first == UInt8(ascii: "\n") { line += 1 }
            case .emptyInput, .error:
                return line
            }
        }
    }
}

/// What the system says of `error` (`strerror`), as the reason of a read or a write.
func systemReason(_ error: Int32) -> String {
    String(cString: strerror(error))
}
