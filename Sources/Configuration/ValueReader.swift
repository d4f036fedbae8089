import Spelling
import TOML

/// Typed reads of configuration values, shared by every table's reader so a type, a
/// duration or a size is judged the same way wherever it appears. Each mistake becomes a
/// `ConfigurationError` at the key (or, for array elements, at the element).
struct ValueReader {
    let file: String

    func error(_ kind: ConfigurationError.Kind, _ path: ConfigurationKeyPath, at position: TOMLPosition, _ message: String,
               suggestion: String? = nil) -> ConfigurationError {
        ConfigurationError(file: self.file, position: position, keyPath: path.description, message: message,
                           suggestion: suggestion, kind: kind)
    }

    func table(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath) throws(ConfigurationError) -> TOMLTable {
        guard let table = entry.value.table else {
            throw self.error(.type, path, at: entry.keyPosition, "expected a table, found \(entry.value.typeName)")
        }
        return table
    }

    /// One error per key of `table` that is not in `allowed`, with the nearest spelling.
    func unknownKeys(_ table: TOMLTable, allowed: [String], at path: ConfigurationKeyPath) -> [ConfigurationError] {
        table.keys.filter { !allowed.contains($0) }.map { key in
            self.error(.unknownKey, path.child(key), at: table.entry(key)?.keyPosition ?? TOMLPosition(line: 1, column: 1),
                       "unknown key", suggestion: Spelling.nearest(to: key, in: allowed))
        }
    }

    func string(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath) throws(ConfigurationError) -> String {
        guard let text = entry.value.string else {
            throw self.error(.type, path, at: entry.keyPosition, "expected a string, found \(entry.value.typeName)")
        }
        return text
    }

    /// A string naming one of `cases`; an unknown one is answered with the nearest.
    func enumeration<Value: RawRepresentable & CaseIterable>(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath,
                                                              named name: String) throws(ConfigurationError) -> Value
        where Value.RawValue == String
    {
        let text = try self.string(entry, at: path)
        guard let value = Value(rawValue: text) else {
            throw self.error(.value, path, at: entry.keyPosition, "unknown \(name) '\(TOMLText.escaped(text))'",
                             suggestion: Spelling.nearest(to: text, in: Value.allCases.map(\.rawValue), always: true))
        }
        return value
    }

    func boolean(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath) throws(ConfigurationError) -> Bool {
        guard let flag = entry.value.boolean else {
            throw self.error(.type, path, at: entry.keyPosition, "expected true or false, found \(entry.value.typeName)")
        }
        return flag
    }

    func integer(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath, range: ClosedRange<Int64>) throws(ConfigurationError) -> Int64 {
        guard let number = entry.value.integer else {
            throw self.error(.type, path, at: entry.keyPosition, "expected an integer, found \(entry.value.typeName)")
        }
        guard range.contains(number) else {
            if range.lowerBound == 1 && number < 1 {
                throw self.error(.value, path, at: entry.keyPosition, "must be positive, got \(number)")
            }
            throw self.error(.value, path, at: entry.keyPosition, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// A duration (see `DurationText`): more than zero and at most `maximum`.
    func duration(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath, maximum: Duration) throws(ConfigurationError) -> Duration {
        let written: String
        let duration: Duration
        switch entry.value.kind {
        case .integer(let seconds):
            written = "\(seconds)"
            guard let parsed = DurationText.seconds(seconds) else {
                throw self.error(.value, path, at: entry.keyPosition,
                                 seconds < 0 ? "must be positive, got \(seconds)" : "\(seconds) is out of range (0, \(DurationText.format(maximum))]")
            }
            duration = parsed
        case .string(let text):
            written = "'\(TOMLText.escaped(text))'"
            guard let parsed = DurationText.parse(text) else {
                let (message, suggestion) = DurationText.invalid(text)
                throw self.error(.value, path, at: entry.keyPosition, message, suggestion: suggestion)
            }
            duration = parsed
        default:
            throw self.error(.type, path, at: entry.keyPosition,
                             "expected a duration such as \"500ms\" or \"5s\", found \(entry.value.typeName)")
        }
        guard duration > .zero else { throw self.error(.value, path, at: entry.keyPosition, "must be positive, got \(written)") }
        guard duration <= maximum else {
            throw self.error(.value, path, at: entry.keyPosition, "\(written) is out of range (0, \(DurationText.format(maximum))]")
        }
        return duration
    }

    /// A size in bytes (see `ByteSizeText`), more than zero.
    func size(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath) throws(ConfigurationError) -> Int {
        switch entry.value.kind {
        case .integer(let bytes):
            guard bytes > 0 else { throw self.error(.value, path, at: entry.keyPosition, "must be positive, got \(bytes)") }
            guard let size = Int(exactly: bytes) else { throw self.error(.value, path, at: entry.keyPosition, "\(bytes) is too large") }
            return size
        case .string(let text):
            guard let bytes = ByteSizeText.parse(text) else {
                throw self.error(.value, path, at: entry.keyPosition,
                                 "invalid size '\(TOMLText.escaped(text))' (use a whole number of bytes, or a number followed by KiB, MiB or GiB)")
            }
            guard bytes > 0 else { throw self.error(.value, path, at: entry.keyPosition, "must be positive, got '\(TOMLText.escaped(text))'") }
            return bytes
        default:
            throw self.error(.type, path, at: entry.keyPosition,
                             "expected a size such as \"64MiB\" or a number of bytes, found \(entry.value.typeName)")
        }
    }
}
