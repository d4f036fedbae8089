/// The named replies (`replies.*` in rules), once: the prelude builds its `replies` table
/// from this list, the linter judges `replies.x` literals by it, and the engine's own
/// failures use the same entries.
public enum ReplyCatalogue {
    public static let entries: [(name: String, reply: SMTPReply)] = [
        ("ok", SMTPReply(code: 250, enhanced: "2.0.0", text: "Ok")),
        ("directory_failure", .directoryFailure),
        ("unable_to_route", SMTPReply(code: 550, enhanced: "5.4.4", text: "Unable to route")),
        ("unable_to_route_temp", SMTPReply(code: 451, enhanced: "4.4.4", text: "Unable to route, try again later")),
        ("rdns_failed", .rdnsFailed),
        ("null_mx", SMTPReply(code: 550, enhanced: "5.7.27", text: "Sender address has null MX")),
        ("rcpt_null_mx", SMTPReply(code: 556, enhanced: "5.1.10", text: "Recipient address has null MX")),
        ("local_error", .localError),
        ("access_denied", SMTPReply(code: 550, enhanced: "5.7.1", text: "Access denied")),
        ("bad_helo", SMTPReply(code: 550, enhanced: "5.7.1", text: "Invalid HELO/EHLO name")),
        // RFC 7372: X.7.23 SPF validation failed, X.7.24 SPF validation error.
        ("spf_fail", SMTPReply(code: 550, enhanced: "5.7.23", text: "SPF validation failed")),
        ("spf_permerror", SMTPReply(code: 550, enhanced: "5.7.24", text: "SPF validation error")),
        ("spf_temperror", SMTPReply(code: 451, enhanced: "4.7.24", text: "SPF validation error, try again later")),
    ]

    public static let byName: [String: SMTPReply] = Dictionary(uniqueKeysWithValues: Self.entries.map { ($0.name, $0.reply) })

    /// `defer()` without a reply.
    public static let defaultDefer = SMTPReply.directoryFailure
    /// `reject()` without a reply.
    public static let defaultReject = SMTPReply.rdnsFailed
}

extension SMTPReply {
    /// 451 4.4.3: a transient DNS failure no rule caught.
    public static let directoryFailure = SMTPReply(code: 451, enhanced: "4.4.3", text: "Directory server failure, try again later")
    /// 451 4.3.0: a script error or a limit.
    public static let localError = SMTPReply(code: 451, enhanced: "4.3.0", text: "Local error in processing, try again later")
    /// 550 5.7.25 (RFC 7372): reverse DNS validation failed.
    public static let rdnsFailed = SMTPReply(code: 550, enhanced: "5.7.25", text: "Reverse DNS validation failed")
}
