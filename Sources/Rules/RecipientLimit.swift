/// How many recipients one transaction may hold, by number and by bytes, and the answer past
/// that: one definition for `vrules serve`, which refuses such a recipient without running
/// rules, and for `vrules run` and `vrules test`, which play it the same way.
public enum RecipientLimit {
    /// `[policy] max_recipients` unless set: Postfix's own `smtpd_recipient_limit` default.
    public static let defaultMaximum = 1_000
    /// The client sends the recipient again in another transaction.
    public static let reply = SMTPReply(code: 452, enhanced: "4.5.3", text: "Too many recipients")

    /// What the transactions an engine holds may take together: a quarter of its Lua state's
    /// memory (`[limits] memory`).
    public static func transactionMemory(stateMemory: Int) -> Int { stateMemory / 4 }

    /// What one transaction may take: a sixteenth of what all may, and at least four empty
    /// transactions' worth.
    public static func share(ofTransactionMemory memory: Int) -> Int { max(TransactionCost.fixed * 4, memory / 16) }

    /// Whether `recipient` would take a transaction that costs `cost` past `share`: its
    /// address twice in `ctx.rcpts` (the list is rebuilt) and once as `ctx.rcpt`.
    public static func exceeds(share: Int, cost: Int, adding recipient: MailAddress) -> Bool {
        cost + 3 * TransactionCost.address(recipient) + 32 > share
    }
}

/// What a held transaction costs in the Lua state, estimated from what the host writes
/// into its `ctx`: a fixed part (the `ctx` data table, its proxy, `client`, `server`,
/// `vars`, about 2 KiB) plus every string and address table. Each recipient counts twice:
/// the host rebuilds `ctx.rcpts` at each RCPT, so the previous copy stays until the
/// collector runs. Rules' own `ctx.vars` are not counted: the operator's code, not the
/// client, decides their size.
public enum TransactionCost {
    public static let fixed = 2_048
    /// A Lua string: its header (24 bytes), the bytes and the NUL, rounded.
    public static func string(_ text: String) -> Int { text.utf8.count + 32 }
    /// `{address, local_part, domain}`: a table with three fields and its strings.
    public static func address(_ address: MailAddress) -> Int {
        160 + self.string(address.address) + self.string(address.localPart) + self.string(address.domain)
    }

    public static func of(_ session: SessionInfo, recipients: [MailAddress]) -> Int {
        var cost = self.fixed + self.string(session.clientIP)
        for text in [session.clientName, session.serverIP, session.serverName, session.helo, session.authMechanism,
                     session.authUsername, session.tls?.version, session.tls?.cipher, session.tls?.sni] {
            if let text { cost += self.string(text) }
        }
        if let from = session.mailFrom { cost += self.address(from) }
        for recipient in recipients { cost += 2 * (self.address(recipient) + 16) }
        if let last = recipients.last { cost += self.address(last) }
        return cost
    }
}
