/// Nearest-spelling suggestions for unknown keys, stages, globals and enum values:
/// "unknown stage 'rpct' (did you mean 'rcpt'?)". One implementation for the
/// configuration loader, the linter and the test harness, so they suggest alike.
public enum Spelling {
    /// Levenshtein distance over Unicode scalars, case-insensitive.
    public static func distance(_ a: String, _ b: String) -> Int {
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

    /// The candidate closest to `word` when it is a plausible typo: within a third of the
    /// candidate's length (at least 2 edits), or a truncation of it ("cache" for
    /// "cache_size"). With `always`, the closest of a small closed set whatever the
    /// distance (enum values). Ties go to the alphabetically first, so output is stable.
    public static func nearest(to word: String, in candidates: some Sequence<String>, always: Bool = false) -> String? {
        let sorted = candidates.sorted()
        let lowered = word.lowercased()
        if lowered.count >= 3,
           let stem = sorted.first(where: { $0.lowercased().hasPrefix(lowered) || lowered.hasPrefix($0.lowercased()) }) {
            return stem
        }
        var best: (candidate: String, distance: Int)?
        for candidate in sorted {
            let d = Self.distance(word, candidate)
            if best == nil || d < best!.distance { best = (candidate, d) }
        }
        guard let best else { return nil }
        if always { return best.candidate }
        guard best.distance <= max(2, best.candidate.count / 3), best.distance < max(word.count, 1) else { return nil }
        return best.candidate
    }

    /// `" (did you mean 'x'?)"`, or nothing.
    public static func hint(for word: String, in candidates: some Sequence<String>) -> String {
        Self.nearest(to: word, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }
}
