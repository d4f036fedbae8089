import ListenAddress
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix

/// Who may connect to the server's UNIX sockets. Postfix's smtpd runs as `postfix`, and the
/// process umask would leave a root-owned socket `srwxr-xr-x`, which it cannot connect to:
/// the socket is given `mode` and `group` before it appears under its name (it is bound
/// under a temporary name in the same directory, changed, then renamed into place), so
/// no client ever finds it with other permissions.
public struct UnixSocketAccess: Hashable, Sendable {
    /// Permission bits, e.g. 0o660.
    public var mode: mode_t?
    public var groupID: gid_t?

    public init(mode: mode_t? = nil, groupID: gid_t? = nil) {
        self.mode = mode
        self.groupID = groupID
    }

    public var isEmpty: Bool { self.mode == nil && self.groupID == nil }

    /// `"0660"` or `"660"`: octal permission bits, at most 0o777.
    public static func parseMode(_ text: String) -> mode_t? {
        guard !text.isEmpty, text.count <= 4, text.allSatisfy({ ("0"..."7").contains($0) }),
              let value = mode_t(text, radix: 8), value <= 0o777 else { return nil }
        return value
    }

    /// The temporary name a socket is bound under before it is moved to `path`: a short
    /// random name in the same directory, so a path that fits the limit still fits; when even
    /// that would not, the socket is bound at `path` itself and changed there.
    static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = "." + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(name).path
        return temporary.utf8.count <= ListenAddress.maximumUnixPathBytes ? temporary : path
    }

    /// Binds `bootstrap`'s listener at `path` (a socket left there by an earlier run is
    /// replaced, any other file is not), with this access from its first moment.
    func bind(_ path: String, with bootstrap: ServerBootstrap) async throws -> any Channel {
        guard !self.isEmpty else {
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        let temporary = Self.temporaryPath(for: path)
        let listener = try await bootstrap.bind(unixDomainSocketPath: temporary, cleanupExistingSocketFile: true).get()
        do {
            try self.apply(temporary: temporary, path: path)
        } catch {
            try? await listener.close()
            unlink(temporary)
            throw error
        }
        return listener
    }

    /// Gives the socket at `temporary` its mode and group, then renames it to `path`.
    func apply(temporary: String, path: String) throws {
        if let mode = self.mode, chmod(temporary, mode) != 0 {
            throw UnixSocketAccessError(reason: "chmod \(String(mode, radix: 8)) \(temporary): \(String(cString: strerror(errno)))")
        }
        if let group = self.groupID, chown(temporary, uid_t.max, group) != 0 {
            throw UnixSocketAccessError(reason: "chgrp \(group) \(temporary): \(String(cString: strerror(errno)))")
        }
        // rename() would replace any file; only a socket left by an earlier run may be.
        var existing = stat()
        if lstat(path, &existing) == 0, existing.st_mode & S_IFMT != S_IFSOCK {
            throw UnixSocketAccessError(reason: "the path exists and is not a socket")
        }
        if rename(temporary, path) != 0 {
            throw UnixSocketAccessError(reason: "rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
    }
}

public struct UnixSocketAccessError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { self.reason }
}
