import Rules

/// Which entries of the rules under test the tests ran, and what each decided: a rule that
/// no test makes refuse mail has an untested refusal, whatever the tests that passed say.
/// Counted per rules file, over the tests that loaded it.
public struct RuleCoverage: Sendable {
    public struct Entry: Sendable {
        public var summary: RuleDefinition
        /// How many times a stage ran it (a `rcpt` entry once per recipient).
        public var runs = 0
        /// How many of those runs ended in each verdict other than `next` (`failed`: the entry
        /// raised an error, and the stage deferred for it).
        public var decisions: [String: Int] = [:]
    }

    public struct File: Sendable {
        public var rulesPath: String
        public var tests = 0
        public var entries: [Entry]
    }

    public private(set) var files: [File] = []

    public init() {}

    public mutating func add(_ result: RuleTestResult) {
        guard let path = result.rulesPath, let entries = result.entries else { return }
        // `rules/tests/../main.lua` as `rules/main.lua`: one file however the tests name it.
        let rulesPath = Self.normalized(path)
        let index = self.files.firstIndex { $0.rulesPath == rulesPath }
        var file = index.map { self.files[$0] } ?? File(rulesPath: rulesPath, entries: entries.map {
            var summary = $0
            summary.position = Self.normalized(summary.position)
            return Entry(summary: summary)
        })
        file.tests += 1
        for run in result.entryRuns {
            // Entries of one stage that share a name count as the first of them.
            guard let position = file.entries.firstIndex(where: { $0.summary.stage == run.stage && $0.summary.name == run.name }) else {
                continue
            }
            file.entries[position].runs += 1
            guard run.decision != "next" else { continue }
            file.entries[position].decisions[run.decision == "error" ? "failed" : run.decision, default: 0] += 1
        }
        if let index { self.files[index] = file } else { self.files.append(file) }
    }

    /// `a/b/../c` as `a/c`, and `./` dropped: how a file named from a test file's directory
    /// is shown (Foundation's `standardizingPath` keeps `..` in a relative path).
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            if part == "." && !parts.isEmpty { continue }
            if part == "..", let last = parts.last, last != "..", last != "", last != "." {
                parts.removeLast()
                continue
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    /// Entries that never ran, and rules that never decided.
    public var uncovered: Int {
        self.files.reduce(0) { total, file in
            total + file.entries.filter { $0.runs == 0 || (!$0.summary.isAction && $0.decisions.isEmpty) }.count
        }
    }

    /// The report: per rules file a line per entry, then one line of totals.
    public var lines: [String] {
        var lines: [String] = []
        var ran = 0, total = 0, decided = 0, rules = 0
        for file in self.files {
            lines.append("coverage of \(file.rulesPath) (\(file.tests) test\(file.tests == 1 ? "" : "s")):")
            for entry in file.entries {
                let summary = entry.summary
                var line = "  \(summary.stage.rawValue) \(summary.isAction ? "action" : "rule") \"\(summary.name)\" (\(summary.position)): "
                total += 1
                if !summary.isAction { rules += 1 }
                guard entry.runs > 0 else {
                    lines.append(line + "never ran")
                    continue
                }
                ran += 1
                line += "ran \(entry.runs) time\(entry.runs == 1 ? "" : "s")"
                let decisions = entry.decisions.values.reduce(0, +)
                if decisions > 0 {
                    if !summary.isAction { decided += 1 }
                    line += ", decided \(decisions) ("
                        + entry.decisions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
                } else if !summary.isAction {
                    line += ", never decided"
                }
                lines.append(line)
            }
        }
        lines.append("coverage: \(ran) of \(total) entries ran; \(decided) of \(rules) rules decided at least once")
        return lines
    }
}
