import DNS
import Foundation
import CLuaShim
import Lua

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
        lua.newTable(fieldCount: 2)
        if let ip = session.serverIP { lua.pushString(ip); lua.setField("ip", table: -2) }
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

    /// Writes what changes between stages into the context's data table.
    func updateContext(dataReference: Int32, stage: Stage, session: SessionInfo, previous: SessionInfo?) {
        let lua = self.lua
        lua.pushReference(dataReference)
        let data = lua.top()
        lua.pushString(stage.rawValue); lua.setField("stage", table: data)
        if previous == nil || previous!.helo != session.helo {
            if let helo = session.helo { lua.pushString(helo) } else { lua.pushNil() }
            lua.setField("helo", table: data)
        }
        if previous == nil || previous!.mailFrom != session.mailFrom {
            if let from = session.mailFrom { self.pushAddress(from) } else { lua.pushNil() }
            lua.setField("mail_from", table: data)
        }
        if previous == nil || previous!.rcpts != session.rcpts {
            lua.newTable(arrayCount: Int32(session.rcpts.count))
            for (index, rcpt) in session.rcpts.enumerated() {
                self.pushAddress(rcpt)
                lua.setIndex(index + 1, table: -2)
            }
            // ctx.rcpt is the same object as the last of ctx.rcpts.
            if session.rcpts.isEmpty { lua.pushNil() } else { _ = lua.getIndex(session.rcpts.count, table: -1) }
            lua.setField("rcpt", table: data)
            lua.makeTopReadonly(name: "ctx.rcpts")
            lua.setField("rcpts", table: data)
            if let domain = session.virtualDomain { lua.pushString(domain) } else { lua.pushNil() }
            lua.setField("domain", table: data)
        }
        if previous == nil || previous!.authUsername != session.authUsername || previous!.authMechanism != session.authMechanism {
            if session.authMechanism != nil || session.authUsername != nil {
                lua.newTable(fieldCount: 2)
                if let m = session.authMechanism { lua.pushString(m); lua.setField("mechanism", table: -2) }
                if let u = session.authUsername { lua.pushString(u); lua.setField("username", table: -2) }
                lua.makeTopReadonly(name: "ctx.auth")
            } else {
                lua.pushNil()
            }
            lua.setField("auth", table: data)
        }
        if previous == nil || previous!.tls != session.tls {
            if let tls = session.tls {
                lua.newTable(fieldCount: 3)
                if let v = tls.version { lua.pushString(v); lua.setField("version", table: -2) }
                if let c = tls.cipher { lua.pushString(c); lua.setField("cipher", table: -2) }
                if let s = tls.sni { lua.pushString(s); lua.setField("sni", table: -2) }
                lua.makeTopReadonly(name: "ctx.tls")
            } else {
                lua.pushBoolean(false)
            }
            lua.setField("tls", table: data)
        }
        lua.pop()
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

    func releaseContext(data: Int32, proxy: Int32) {
        self.lua.release(reference: data)
        self.lua.release(reference: proxy)
    }
}
