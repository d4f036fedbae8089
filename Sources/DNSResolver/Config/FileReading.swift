#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct FileReadError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(self.path): \(self.reason)" }
}

/// Reads a whole text file with stdio, so the module needs no Foundation. Nil when the file
/// does not exist; an error for any other failure.
func readTextFile(_ path: String) throws -> String? {
    guard let file = fopen(path, "rb") else {
        if errno == ENOENT { return nil }
        throw FileReadError(path: path, reason: String(cString: strerror(errno)))
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
        if count < chunk.count {
            if ferror(file) != 0 { throw FileReadError(path: path, reason: "read error") }
            break
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
