#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Standard error as systemd's journal reads it, when it is the journal: each line starts
/// with its syslog priority (`<4>` for a warning, sd-daemon(3)), so `journalctl -p warning`
/// finds warnings and errors; without the prefix every line is stored at the unit's default
/// priority (info). The journal stamps each entry itself, so the line's own timestamp goes.
///
/// The journal is standard error when `$JOURNAL_STREAM` names its device and inode (systemd
/// sets it for a unit whose output goes there): elsewhere (a terminal, a file, a pipe, or
/// the variable inherited by a process whose standard error was redirected) the lines are
/// written as `StreamLogHandler` makes them.
struct JournalStream: TextOutputStream, Sendable {
    /// Whether standard error is the stream `environment`'s `JOURNAL_STREAM` names.
    static func isStandardError(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// The priority of each level (syslog's: 2 critical ... 7 debug).
    static func priority(_ level: Substring) -> Int? {
        switch level {
        case "trace", "debug": 7
        case "info": 6
        case "notice": 5
        case "warning": 4
        case "error": 3
        case "critical": 2
        default: nil
        }
    }

    /// `line` as `StreamLogHandler` writes it (`TIMESTAMP LEVEL LABEL: ...`), with the
    /// level's priority in place of the timestamp: `<4>warning vrules: ...`.
    static func journalLine(_ line: String) -> String {
        guard let space = line.firstIndex(of: " ") else { return line }
        let rest = line[line.index(after: space)...]
        guard let level = rest.split(separator: " ", maxSplits: 1).first, let priority = Self.priority(level) else { return line }
        return "<\(priority)>" + rest
    }

    mutating func write(_ string: String) {
        var line = Self.journalLine(string)
        // One write per entry: lines of concurrent entries never interleave.
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
