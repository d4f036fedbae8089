import DNS
import Foundation
import CLuaShim
import Lua

/// What a transaction's Lua `ctx` shows of its session: the fields a stage rewrites when
/// they change.
struct ShownContext {
    /// Whether any stage wrote the fields yet.
    var started = false
    var helo: String?
    var mailFrom: MailAddress?
    var rcpts: [MailAddress] = []
    var authMechanism: String?
    var authUsername: String?
    var tls: SessionInfo.TLSInfo?
}

/// A transaction's `ctx` in the Lua state: made once, updated per stage with what changed.
extension RuleHost {
    // MARK: transactions

    /// Creates the transaction's `ctx` (a read-only proxy) and its `vars` table.
    func makeContext(for session: SessionInfo) -> (data: Int32, proxy: Int32) {
        let lua = self.lua
        lua.newTable(fieldCount: 16)
        let data = lua.top()
        lua.newTable(fieldCount: 3)
        lua.pushString(session.clientIP); lua.setField("ip", table: -2)
        if let port = session.clientPort { lua.pushInteger(port); lua.setField("port", table: -2) }
        if let name = session.clientName { lua.pushString(name); lua.setField("name", table: -2) }
        lua.makeTopReadonly(name: "ctx.client")
        lua.setField("client", table: data)
        lua.newTable(fieldCount: 3)
        if let ip = session.serverIP { lua.pushString(ip); lua.setField("ip", table: -2) }
        if let port = session.serverPort { lua.pushInteger(port); lua.setField("port", table: -2) }
        if let name = session.serverName { lua.pushString(name); lua.setField("name", table: -2) }
        lua.makeTopReadonly(name: "ctx.server")
        lua.setField("server", table: data)
        lua.newTable()
        lua.setField("vars", table: data)
        lua.pushReference(self.addHeaderReference)
        lua.setField("add_header", table: data)
        lua.pushValue(at: data)
        let dataReference = lua.makeReference()
        lua.makeTopReadonly(name: "ctx")
        let proxyReference = lua.makeReference()
        return (dataReference, proxyReference)
    }

    /// Writes what changed since the last stage into the context's data table. Reads the
    /// transaction's fields in place: copying a whole `SessionInfo` (a dozen strings) per
    /// stage showed in profiles.
    ///
    /// A stage sees what the SMTP dialogue has told by then, whatever the session already
    /// holds: no HELO name before `helo`, no sender before `mail`, no recipient before `rcpt`,
    /// no authentication before `authenticate`. `vrules serve` learns a transaction from
    /// Postfix's first request, often at RCPT with every field known, and runs the earlier
    /// stages then; `vrules run` and `vrules test` know the whole session from the start. So
    /// a rule reads the same `ctx` at a stage however the server came to run it, and a stage's
    /// result, kept for the transaction, does not hang on a recipient asked first.
    func updateContext(of transaction: RuleTransaction, stage: Stage) {
        let lua = self.lua
        lua.pushReference(transaction.dataReference)
        let data = lua.top()
        lua.pushString(stage.rawValue); lua.setField("stage", table: data)
        let fresh = !transaction.shown.started
        transaction.shown.started = true
        // A field still nil needs no write on a fresh context: the table does not have it.
        let visibleHelo = stage >= .helo ? transaction.session.helo : nil
        if fresh ? visibleHelo != nil : transaction.shown.helo != visibleHelo {
            if let visibleHelo { lua.pushString(visibleHelo) } else { lua.pushNil() }
            lua.setField("helo", table: data)
            transaction.shown.helo = visibleHelo
        }
        let visibleFrom = stage >= .mail ? transaction.session.mailFrom : nil
        if fresh ? visibleFrom != nil : transaction.shown.mailFrom != visibleFrom {
            if let visibleFrom { self.pushAddress(visibleFrom) } else { lua.pushNil() }
            lua.setField("mail_from", table: data)
            transaction.shown.mailFrom = visibleFrom
        }
        let visibleRecipients = stage >= .rcpt ? transaction.session.rcpts : []
        if fresh || transaction.shown.rcpts != visibleRecipients {
            let rcpts = visibleRecipients
            let shown = transaction.shown.rcpts
            if rcpts.isEmpty {
                // Before RCPT: the one empty list all transactions share (it cannot change).
                lua.pushNil()
                lua.setField("rcpt", table: data)
                lua.pushReference(self.emptyRecipientsReference)
                lua.setField("rcpts", table: data)
            } else if !fresh, !shown.isEmpty, shown.count < rcpts.count, rcpts.starts(with: shown),
                      self.pushRecipientList(of: data) {
                // The list grows in place: the recipients already shown keep their objects and
                // the list its own; each RCPT adds one address (building the list again would
                // be quadratic in a transaction's recipients).
                for (index, rcpt) in rcpts.enumerated().dropFirst(shown.count) {
                    self.pushAddress(rcpt)
                    lua.setIndex(index + 1, table: -2)
                }
                // ctx.rcpt is the same object as the last of ctx.rcpts.
                _ = lua.getIndex(rcpts.count, table: -1)
                lua.setField("rcpt", table: data)
                lua.pop()
            } else {
                lua.newTable(arrayCount: Int32(rcpts.count))
                for (index, rcpt) in rcpts.enumerated() {
                    self.pushAddress(rcpt)
                    lua.setIndex(index + 1, table: -2)
                }
                _ = lua.getIndex(rcpts.count, table: -1)
                lua.setField("rcpt", table: data)
                lua.makeTopReadonly(name: "ctx.rcpts")
                lua.setField("rcpts", table: data)
            }
            if let domain = transaction.session.virtualDomain { lua.pushString(domain) } else { lua.pushNil() }
            lua.setField("domain", table: data)
            transaction.shown.rcpts = rcpts
        }
        let authenticated = stage >= .authenticate
        let visibleMechanism = authenticated ? transaction.session.authMechanism : nil
        let visibleUsername = authenticated ? transaction.session.authUsername : nil
        if fresh ? (visibleMechanism != nil || visibleUsername != nil)
            : (transaction.shown.authUsername != visibleUsername || transaction.shown.authMechanism != visibleMechanism) {
            let mechanism = visibleMechanism, username = visibleUsername
            if mechanism != nil || username != nil {
                lua.newTable(fieldCount: 2)
                if let mechanism { lua.pushString(mechanism); lua.setField("mechanism", table: -2) }
                if let username { lua.pushString(username); lua.setField("username", table: -2) }
                lua.makeTopReadonly(name: "ctx.auth")
            } else {
                lua.pushNil()
            }
            lua.setField("auth", table: data)
            transaction.shown.authMechanism = mechanism
            transaction.shown.authUsername = username
        }
        if fresh || transaction.shown.tls != transaction.session.tls {
            let tls = transaction.session.tls
            if let tls {
                lua.newTable(fieldCount: 3)
                if let v = tls.version { lua.pushString(v); lua.setField("version", table: -2) }
                if let c = tls.cipher { lua.pushString(c); lua.setField("cipher", table: -2) }
                if let s = tls.sni { lua.pushString(s); lua.setField("sni", table: -2) }
                lua.makeTopReadonly(name: "ctx.tls")
            } else {
                lua.pushBoolean(false)
            }
            lua.setField("tls", table: data)
            transaction.shown.tls = tls
        }
        lua.pop()
    }

    /// Pushes the table behind `ctx.rcpts` of the context data at `data` (true), or nothing
    /// (false) if it is not a read-only list the host made.
    private func pushRecipientList(of data: Int32) -> Bool {
        let lua = self.lua
        _ = lua.getField("rcpts", table: data)
        guard vrules_push_readonly_target(lua.L, -1) == 1 else {
            lua.pop()
            return false
        }
        // The table takes the proxy's place.
        lua.insert(at: -2)
        lua.pop()
        return true
    }

    fileprivate func pushAddress(_ address: MailAddress) {
        var text = address.address
        var localPart = address.localPart
        var domain = address.domain
        text.withUTF8 { text in
            localPart.withUTF8 { localPart in
                domain.withUTF8 { domain in
                    text.withMemoryRebound(to: CChar.self) { text in
                        localPart.withMemoryRebound(to: CChar.self) { localPart in
                            domain.withMemoryRebound(to: CChar.self) { domain in
                                vrules_push_address(self.lua.L, text.baseAddress, text.count, localPart.baseAddress,
                                                    localPart.count, domain.baseAddress, domain.count)
                            }
                        }
                    }
                }
            }
        }
    }

    func vars(dataReference: Int32) -> [String: String] {
        let lua = self.lua
        var result: [String: String] = [:]
        lua.pushReference(dataReference)
        guard lua.getField("vars", table: -1) == .table else {
            lua.pop(2)
            return result
        }
        lua.forEachPair(table: -1) {
            guard let key = lua.string(at: -2) ?? lua.integer(at: -2).map(String.init) else { return }
            switch lua.type(at: -1) {
            case .string: result[key] = lua.string(at: -1)
            case .boolean: result[key] = lua.boolean(at: -1) ? "true" : "false"
            case .number:
                if let integer = lua.integer(at: -1) { result[key] = String(integer) } else { result[key] = String(lua.number(at: -1)) }
            default: result[key] = lua.type(at: -1).name
            }
        }
        lua.pop(2)
        return result
    }

    /// Frees the context and expires its proxy: a rule that kept the `ctx` of an ended
    /// transaction gets an error, not that transaction's client and sender.
    func releaseContext(data: Int32, proxy: Int32) {
        self.lua.pushReference(proxy)
        vrules_expire_readonly(self.lua.L, -1)
        self.lua.pop()
        self.lua.release(reference: data)
        self.lua.release(reference: proxy)
    }
}
