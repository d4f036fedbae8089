import OperatorFiles

/// The largest resolv.conf read: glibc reads a few lines of it.
let resolvConfMaximumSize = 1 << 20

/// Reads a whole text file (`InputFile`: a regular file within `limit`). Nil when the file
/// does not exist; an error for any other failure.
func readTextFile(_ path: String, limit: Int) throws(InputFileError) -> String? {
    do {
        let bytes = try InputFile.bytes(atPath: path, limit: limit)
        return String(decoding: bytes, as: UTF8.self)
    } catch where error.code == .missing {
        return nil
    }
}
