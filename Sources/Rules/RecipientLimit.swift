/// How many recipients one transaction may hold, and the answer past that: one definition for
/// `vrules serve`, which refuses such a recipient without running rules, and for `vrules run`
/// and `vrules test`, which play it the same way.
public enum RecipientLimit {
    /// `[policy] max_recipients` unless set: Postfix's own `smtpd_recipient_limit` default.
    public static let defaultMaximum = 1_000
    /// The client sends the recipient again in another transaction.
    public static let reply = SMTPReply(code: 452, enhanced: "4.5.3", text: "Too many recipients")
}
