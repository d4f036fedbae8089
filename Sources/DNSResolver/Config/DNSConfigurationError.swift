/// A configuration mistake, said the way an operator needs it: which file, which key, what
/// is wrong, and the nearest valid spelling when there is one.
public struct DNSConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// Dotted key path, e.g. `server.dns.options.ip_strategy`; virtual domains are quoted:
    /// `server.virtual."example.com".dns.type`.
    public var keyPath: String
    public var message: String
    /// The nearest valid key or value, when the mistake looks like a misspelling.
    public var suggestion: String?

    public init(file: String, keyPath: String, message: String, suggestion: String? = nil) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
    }

    public var description: String {
        var text = self.keyPath.isEmpty ? "\(self.file): \(self.message)" : "\(self.file): \(self.keyPath): \(self.message)"
        if let suggestion = self.suggestion { text += "; did you mean '\(suggestion)'?" }
        return text
    }
}

/// Nearest-spelling suggestions for unknown keys and enum values.
enum Spelling {
    /// Levenshtein distance over Unicode scalars, case-insensitive on ASCII.
    static func distance(_ a: String, _ b: String) -> Int {
        let left = Array(a.lowercased().unicodeScalars)
        let right = Array(b.lowercased().unicodeScalars)
        if left.isEmpty { return right.count }
        if right.isEmpty { return left.count }
        var previous = Array(0...right.count)
        var current = [Int](repeating: 0, count: right.count + 1)
        for i in 1...left.count {
            current[0] = i
            for j in 1...right.count {
                let cost = left[i - 1] == right[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[right.count]
    }

    /// The candidate closest to `word`, if it is close enough to be a plausible typo
    /// (or if `always`, as for a small closed set of enum values).
    static func nearest(to word: String, in candidates: [String], always: Bool = false) -> String? {
        let lowered = word.lowercased()
        // A truncated or over-long key ("cache" for "cache_size") is a typo even when far in edits.
        if lowered.count >= 3, let stem = candidates.first(where: { $0.lowercased().hasPrefix(lowered) || lowered.hasPrefix($0.lowercased()) }) {
            return stem
        }
        guard let best = candidates.min(by: { Self.distance(word, $0) < Self.distance(word, $1) }) else { return nil }
        if always { return best }
        let limit = max(2, best.count / 3)
        return Self.distance(word, best) <= limit ? best : nil
    }
}
