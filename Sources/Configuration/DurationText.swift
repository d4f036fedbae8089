import TOML

/// The one duration grammar of vrules, for the configuration (`timeout`, `stage_timeout`)
/// and the command line (`--delay`, `--fault NAME=delay:…`): a whole number followed by
/// `ms`, `s` or `m` (`"500ms"`, `"5s"`, `"2m"`). In TOML a bare integer means seconds;
/// that is the only other form. No fractions, no spaces, no other units.
public enum DurationText {
    static let units: [(unit: String, nanoseconds: Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000)]

    /// The duration, or nil when `text` is not in the grammar (or overflows 64-bit nanoseconds).
    public static func parse(_ text: String) -> Duration? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 18, let number = Int64(digits),
              let scale = Self.units.first(where: { $0.unit == unit })?.nanoseconds else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : .nanoseconds(product)
    }

    /// A bare integer of seconds, as TOML integers are read.
    public static func seconds(_ seconds: Int64) -> Duration? {
        guard seconds >= 0, seconds <= Int64.max / 1_000_000_000 else { return nil }
        return .seconds(seconds)
    }

    /// What to write instead, when the mistake is plain: `"5"` → `5s`, `"5sec"` → `5s`,
    /// `"500msec"` → `500ms`. Nil when there is no single obvious fix (`"1 minute"`).
    public static func suggestion(for text: String) -> String? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        let unit = text.dropFirst(digits.count).lowercased()
        let aliases: [String: String] = [
            "": "s", "ms": "ms", "msec": "ms", "msecs": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
            "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
            "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
        ]
        guard let canonical = aliases[unit] else { return nil }
        return "\(digits)\(canonical)"
    }

    /// The error for text outside the grammar: with a suggestion when there is one, else
    /// with an example.
    public static func invalid(_ text: String) -> (message: String, suggestion: String?) {
        let echo = TOMLText.escaped(text)
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty, Self.units.contains(where: { $0.unit == text.dropFirst(digits.count) }) {
            return ("duration '\(echo)' is too large", nil)
        }
        if let suggestion = Self.suggestion(for: text) {
            return ("invalid duration '\(echo)' (use a whole number followed by ms, s or m)", suggestion)
        }
        return ("invalid duration '\(echo)' (use a whole number followed by ms, s or m, e.g. \"60s\")", nil)
    }

    /// `1500ms` → `"1500ms"`, `120s` → `"2m"`: the shortest exact spelling, for messages.
    public static func format(_ duration: Duration) -> String {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        for (unit, scale) in Self.units.reversed() where nanoseconds % scale == 0 {
            return "\(nanoseconds / scale)\(unit)"
        }
        return "\(nanoseconds / 1_000_000)ms"
    }
}

extension DurationText {
    /// The complaint about text outside the grammar in one line, for the command line.
    public static func complaint(about text: String) -> String {
        let (message, suggestion) = Self.invalid(text)
        return message + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
    }
}
