/// The limits every script runs under. Passing one ends the stage in 451 4.3.0.
public struct RuleLimits: Hashable, Sendable {
    /// Lua VM instructions per stage evaluation (all rules of the stage together).
    public var instructionsPerStage: Int64
    /// Bytes the Lua state may hold in total.
    public var memoryBytes: Int
    /// Wall-clock bound on one stage, DNS waits included.
    public var stageTimeout: Double
    /// Bound on the time a stage's script code runs, DNS waits excluded: the backstop for
    /// work the instruction count cannot see (a comparison of two long strings is one
    /// instruction).
    public var runSecondsPerStage: Double
    /// Instructions and seconds allowed to the script's top level when it loads.
    public var loadInstructions: Int64
    public var loadTimeout: Double
    /// Lines the rules may log in one stage evaluation (and the script while it loads); the
    /// lines past them are dropped, after one line that says so. The instruction budget
    /// alone lets a stage log about 100,000 lines, and a rule that logs every recipient at
    /// each RCPT logs quadratically many: the server's log is not the script's to fill.
    public var logLinesPerStage: Int
    /// DNS calls (`dns.*`, `spf.check_host`) one stage evaluation may make, answered from the
    /// cache or not: a rule that loops over lookups would otherwise ask the resolver without
    /// bound until the stage deadline (DNS waits do not count against the run time), tens
    /// of thousands of questions for one SMTP command. Each call's own questions are bounded
    /// (an SPF check by RFC 7208's limits, a blocklist call by its 32 zones).
    public var dnsCallsPerStage: Int

    public static let defaultLogLinesPerStage = 100
    public static let defaultDNSCallsPerStage = 100

    public init(instructionsPerStage: Int64 = 5_000_000, memoryBytes: Int = 64 << 20, stageTimeout: Double = 60,
                runSecondsPerStage: Double = 1, loadInstructions: Int64 = 50_000_000, loadTimeout: Double = 10,
                logLinesPerStage: Int = RuleLimits.defaultLogLinesPerStage,
                dnsCallsPerStage: Int = RuleLimits.defaultDNSCallsPerStage) {
        self.instructionsPerStage = instructionsPerStage
        self.memoryBytes = memoryBytes
        self.stageTimeout = stageTimeout
        self.runSecondsPerStage = runSecondsPerStage
        self.loadInstructions = loadInstructions
        self.loadTimeout = loadTimeout
        self.logLinesPerStage = logLinesPerStage
        self.dnsCallsPerStage = dnsCallsPerStage
    }
}

/// A per-stage bound on what rules send out: a log line dropped or a DNS call refused past it.
public enum StageBound: String, CaseIterable, Sendable {
    /// `[limits] log_lines`.
    case logLines = "log_lines"
    /// `[limits] dns_calls`.
    case dnsCalls = "dns_calls"
}

/// A script that cannot be loaded: syntax error, error at its top level, bad stage table.
/// The message starts with `path:line:` where a line is known.
public struct RuleLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every problem found, one per line.
    public var message: String
    /// The problems one by one (the stage table can have several).
    public var problems: [String]

    public init(_ message: String) {
        self.message = message
        self.problems = [message]
    }

    public init(problems: [String]) {
        self.message = problems.joined(separator: "\n")
        self.problems = problems
    }

    public var description: String { self.message }
}
