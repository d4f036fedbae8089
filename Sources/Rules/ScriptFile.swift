import OperatorFiles

/// How rule scripts, the modules they `require` and test files are read: UTF-8 text in a
/// regular file of at most `maximumSize` (`InputFile`), far above any script, so that a
/// path to a FIFO, a device or a huge file is a clear error rather than a wait or a full
/// memory.
public enum ScriptFile {
    public static let maximumSize = 16 << 20

    public static func source(atPath path: String) throws(InputFileError) -> String {
        try InputFile.text(atPath: path, limit: Self.maximumSize)
    }
}
