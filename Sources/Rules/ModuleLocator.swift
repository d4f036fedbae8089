import Foundation
import OperatorFiles

/// Resolves `require "a.b"` to `<rules directory>/a/b.lua` and refuses anything that
/// would leave the rules directory (absolute paths, `..`, symlinks pointing out).
public struct ModuleLocator: Sendable {
    public let rulesDirectory: String

    public init(rulesDirectory: String) {
        self.rulesDirectory = rulesDirectory
    }

    public struct Failure: Error, Sendable {
        public var message: String
    }

    /// Where `require(name)` reads from, checked: a valid dotted name, a file that exists,
    /// and that stays inside the rules directory once symlinks are resolved.
    public func path(of name: String) -> Result<String, Failure> {
        guard Self.isValidModuleName(name) else {
            return .failure(Failure(message: "require: invalid module name '\(name)' (use dotted names like 'lib.util'; modules load only from the rules directory)"))
        }
        let relative = name.replacingOccurrences(of: ".", with: "/") + ".lua"
        let directory = self.rulesDirectory.isEmpty ? "." : self.rulesDirectory
        let path = directory == "." ? relative : (directory.hasSuffix("/") ? directory + relative : directory + "/" + relative)
        guard let root = Self.realPath(directory), let resolved = Self.realPath(path) else {
            return .failure(Failure(message: "require: module '\(name)' not found (looked for \(path))"))
        }
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            return .failure(Failure(message: "require: module '\(name)' resolves outside the rules directory"))
        }
        return .success(path)
    }

    /// The module's source and the path it was read from.
    public func source(of name: String) -> Result<(String, String), Failure> {
        self.path(of: name).flatMap { path in
            do throws(InputFileError) {
                return .success((try ScriptFile.source(atPath: path), path))
            } catch {
                return .failure(Failure(message: "require: cannot read module '\(name)' at \(path): \(error.reason)"))
            }
        }
    }

    public static func isValidModuleName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 200 else { return false }
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let first = part.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7a) else {
                return false
            }
            for byte in part.utf8 where !(byte == UInt8(ascii: "_") || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || (byte >= 0x30 && byte <= 0x39)) {
                return false
            }
        }
        return true
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
