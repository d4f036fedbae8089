import DNS

/// How reports (`vrules run`, `vrules test`) print the parts of a trace event they share.
public enum TraceText {
    /// The DNSSEC status after a query's outcome: `""` for an unvalidated answer,
    /// `" secure"`, `" (RRSIG expired ...)"` after an outcome that already says `bogus`,
    /// else the status with its reason (`" insecure (unsigned delegation at x.test)"`).
    public static func security(_ security: DNSSecurity?, outcome: String) -> String {
        guard let security else { return "" }
        if security.status.rawValue == outcome { return security.reason.map { " (\($0))" } ?? "" }
        return " " + security.description
    }
}
