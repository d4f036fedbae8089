import OperatorFiles

/// Reads a configuration file's bytes: a regular file of at most `maximumSize`
/// (`InputFile`), so `--config /dev/zero` or a mistyped path to a huge file is an error
/// instead of a process that fills its memory.
enum ConfigurationFileReader {
    static let maximumSize = 16 << 20

    enum Outcome {
        case missing
        case contents([UInt8])
        case unreadable(String)
    }

    static func read(_ path: String) -> Outcome {
        do {
            return .contents(try InputFile.bytes(atPath: path, limit: Self.maximumSize))
        } catch where error.code == .missing {
            return .missing
        } catch {
            return .unreadable("cannot read file: \(error.reason)")
        }
    }
}
