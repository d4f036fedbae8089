import DNS
import Lua

/// `spf.check_host(ip, domain, sender[, helo])` and `spf.check(ctx)` (through the prelude):
/// RFC 7208 check_host() as a DNS call, so the rule's coroutine yields while it waits and
/// one Lua state serves many checks at once. Never raises for DNS trouble: that is
/// `temperror`.
extension RuleHost {
    func spfArguments(thread: LuaThread, memo: SPFResultMemo?) -> Result<SPFCall, HostCallError> {
        guard let ipText = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("spf.check_host: expected an IP address string, got \(self.lua.type(at: 1, thread).name)"))
        }
        guard let ip = IPAddress(ipText) else { return .failure(HostCallError("spf.check_host: invalid IP address '\(ipText)'")) }
        guard let domain = self.lua.string(at: 2, thread) else {
            return .failure(HostCallError("spf.check_host: expected a domain string, got \(self.lua.type(at: 2, thread).name)"))
        }
        guard let sender = self.lua.string(at: 3, thread) else {
            return .failure(HostCallError("spf.check_host: expected a sender string (\"\" for the null reverse-path), got \(self.lua.type(at: 3, thread).name)"))
        }
        let helo = self.lua.string(at: 4, thread)
        let identity = self.lua.string(at: 5, thread) ?? "mailfrom"
        let receiver = self.lua.string(at: 6, thread) ?? "unknown"
        // U-labels become A-labels; a name that is not valid is left to check_host, which
        // answers `none` for a malformed domain (RFC 7208 §4.3).
        let asked = (try? DNSName.normalize(domain)) ?? domain
        return .success(SPFCall(ip: ip, domain: asked, sender: sender, helo: helo, identity: identity, receiver: receiver,
                                memo: memo))
    }

    func pushSPFResult(_ result: SPFResult, of call: SPFCall, thread: LuaThread) {
        let lua = self.lua
        lua.newTable(fieldCount: 10, thread)
        // What the check was about, for spf.received_header and authres.
        lua.pushString(call.ip.description, thread); lua.setField("client_ip", table: -2, thread)
        lua.pushString(call.sender, thread); lua.setField("envelope_from", table: -2, thread)
        if let helo = call.helo { lua.pushString(helo, thread); lua.setField("helo", table: -2, thread) }
        lua.pushString(call.receiver, thread); lua.setField("receiver", table: -2, thread)
        lua.pushString(result.result.rawValue, thread); lua.setField("result", table: -2, thread)
        lua.pushString(result.domain, thread); lua.setField("domain", table: -2, thread)
        lua.pushString(call.identity, thread); lua.setField("identity", table: -2, thread)
        if let mechanism = result.mechanism { lua.pushString(mechanism, thread); lua.setField("mechanism", table: -2, thread) }
        if let explanation = result.explanation { lua.pushString(explanation, thread); lua.setField("explanation", table: -2, thread) }
        if let reason = result.reason { lua.pushString(reason, thread); lua.setField("reason", table: -2, thread) }
    }
}
