import DNS
import Foundation
import Lua
import Spelling

/// Functions the prelude receives as `host.*`, all trampolines into `RuleHost`.
enum HostFunction: Int32, CaseIterable {
    case dnsLookup = 1
    case dnsRlookup
    case dnsLocateMX
    case dnsIprev
    case dnsQuery
    case log
    case readModule
    case traceRule
    case makeReply
    case parseReply
    case checkReply
    case suggest

    var luaName: String {
        switch self {
        case .dnsLookup: return "dns_lookup"
        case .dnsRlookup: return "dns_rlookup"
        case .dnsLocateMX: return "dns_locate_mx"
        case .dnsIprev: return "dns_iprev"
        case .dnsQuery: return "dns_query"
        case .log: return "log"
        case .readModule: return "read_module"
        case .traceRule: return "trace_rule"
        case .makeReply: return "make_reply"
        case .parseReply: return "parse_reply"
        case .checkReply: return "check_reply"
        case .suggest: return "suggest"
        }
    }
}

/// A rule or action of a loaded script.
struct RuleEntry {
    var name: String
    var isAction: Bool
    var position: String
}

/// Owns one Lua state with the sandbox and the loaded rules, and answers host calls.
/// Not thread-safe: `RuleEngine` (an actor) is its only user.
final class RuleHost: LuaHostDispatching {
    let lua: LuaState
    let limits: RuleLimits
    let rulesDirectory: String
    var tracing = true
    var queryObserver: (@Sendable (DNSQuestion, String) -> Void)?
    var logHandler: (@Sendable (RuleLogRecord) -> Void)?

    private var environmentReference: Int32 = 0
    private var compileReference: Int32 = 0
    private var readonlyReference: Int32 = 0
    private var dnsErrorMetatableReference: Int32 = 0
    private var stateReference: Int32 = 0
    private var globalsReference: Int32 = 0
    private var runStageReference: Int32 = 0
    private var byStageReference: Int32 = 0
    /// Per stage, the Lua list of its entries that `run_stage` walks.
    private var stageListReferences: [Stage: Int32] = [:]

    private(set) var entries: [Stage: [RuleEntry]] = [:]
    var threads = StageThreadPool()

    init(limits: RuleLimits, rulesDirectory: String) {
        LuaHostDispatch.install()
        self.lua = LuaState(memoryLimit: limits.memoryBytes)
        self.limits = limits
        self.rulesDirectory = rulesDirectory
        self.installPrelude()
    }

    private func installPrelude() {
        let lua = self.lua
        guard case .success = lua.load(source: Prelude.source, chunkName: Prelude.chunkName) else {
            fatalError("the vrules prelude does not compile")
        }
        lua.newTable()
        let hostTable = lua.top()
        let selfPointer = Unmanaged.passUnretained(self as AnyObject).toOpaque()
        for function in HostFunction.allCases {
            lua.pushHostFunction(host: selfPointer, id: function.rawValue)
            lua.setField(function.luaName, table: hostTable)
        }
        guard lua.pushSandboxLibrary() else { fatalError("cannot build the sandbox library") }
        lua.setField("lib", table: hostTable)
        self.pushFacts(into: hostTable)
        lua.newTable()
        lua.pushValue(at: -1)
        self.stateReference = lua.makeReference()
        if case .failure(let error) = lua.protectedCall(arguments: 2, results: 1) {
            fatalError("the vrules prelude failed: \(error)")
        }
        let exports = lua.top()
        func reference(_ key: String) -> Int32 {
            lua.getField(key, table: exports)
            return lua.makeReference()
        }
        self.environmentReference = reference("env")
        self.compileReference = reference("compile")
        self.readonlyReference = reference("readonly")
        self.dnsErrorMetatableReference = reference("dns_error_mt")
        self.globalsReference = reference("globals")
        self.runStageReference = reference("run_stage")
        lua.getField("by_stage", table: exports)
        self.byStageReference = lua.makeReference()
        lua.pop()
    }

    /// What the prelude learns from the host rather than restating: the stages in order,
    /// the named replies, and the allow-list of Lua's own functions (from `HostAPI`).
    private func pushFacts(into hostTable: Int32) {
        let lua = self.lua
        lua.pushStringArray(Stage.allCases.map(\.rawValue))
        lua.setField("stages", table: hostTable)
        lua.newTable(arrayCount: Int32(ReplyCatalogue.entries.count))
        for (index, entry) in ReplyCatalogue.entries.enumerated() {
            lua.newTable(fieldCount: 4)
            lua.pushString(entry.name); lua.setField("name", table: -2)
            lua.pushInteger(entry.reply.code); lua.setField("code", table: -2)
            lua.pushString(entry.reply.enhanced); lua.setField("enhanced", table: -2)
            lua.pushString(entry.reply.text); lua.setField("text", table: -2)
            lua.setIndex(index + 1, table: -2)
        }
        lua.setField("replies", table: hostTable)
        lua.newTable()
        lua.pushStringArray(HostAPI.current.standardGlobals)
        lua.setField("base", table: -2)
        for library in HostAPI.standardLibraries {
            lua.pushStringArray(HostAPI.current.table(library)?.fields ?? [])
            lua.setField(library, table: -2)
        }
        lua.setField("allow", table: hostTable)
    }

    private func setLoading(_ loading: Bool) {
        self.lua.pushReference(self.stateReference)
        self.lua.pushBoolean(loading)
        self.lua.setField("loading", table: -2)
        self.lua.pop()
    }

    /// What the sandbox actually binds: each global, with the member names of tables
    /// (read through read-only proxies). Compared with `HostAPI` by the tests.
    func boundGlobals() -> [String: Set<String>] {
        let lua = self.lua
        var result: [String: Set<String>] = [:]
        lua.pushReference(self.globalsReference)
        lua.forEachPair(table: -1) {
            guard let name = lua.string(at: -2) else { return }
            var members = Set<String>()
            if lua.type(at: -1) == .table {
                var pushed: Int32 = 0
                if lua.getMetatable(at: -1) {
                    pushed += 1
                    if lua.getField("__index", table: -1) == .table {
                        pushed += 1
                    }
                }
                let table: Int32 = pushed == 2 ? -1 : -1 - pushed
                lua.forEachPair(table: table) {
                    if let member = lua.string(at: -2) { members.insert(member) }
                }
                lua.pop(pushed)
            }
            result[name] = members
        }
        lua.pop()
        return result
    }

    // MARK: loading

    /// Loads the rule script at `path` (its `require`s come from `rulesDirectory`).
    func load(path: String) throws(RuleLoadError) {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RuleLoadError("\(path): cannot read rule script: \(error.localizedDescription)")
        }
        try self.load(source: source, path: path)
    }

    func load(source: String, path: String) throws(RuleLoadError) {
        let lua = self.lua
        let base = lua.top()
        defer { lua.setTop(base) }
        if case .failure(let error) = lua.load(source: source, chunkName: "@" + path) {
            throw RuleLoadError(error.message)
        }
        lua.pushReference(self.environmentReference)
        lua.setUpvalue(function: -2, 1)
        self.setLoading(true)
        let ran = lua.withMainBudget(instructions: self.limits.loadInstructions, seconds: self.limits.loadTimeout) {
            lua.protectedCall(arguments: 0, results: 1)
        }
        self.setLoading(false)
        if case .failure(let error) = ran { throw RuleLoadError(error.message) }

        lua.pushReference(self.compileReference)
        lua.insert(at: -2)
        lua.pushString(path)
        if case .failure(let error) = lua.protectedCall(arguments: 2, results: 2) {
            throw RuleLoadError(error.message)
        }
        var problems: [String] = []
        for index in 1...max(1, lua.rawLength(at: -1)) where index <= lua.rawLength(at: -1) {
            lua.getIndex(index, table: -1)
            problems.append(lua.string(at: -1) ?? "?")
            lua.pop()
        }
        lua.pop()
        if !problems.isEmpty { throw RuleLoadError(problems: problems) }
        var entries: [Stage: [RuleEntry]] = [:]
        let list = lua.top()
        for index in 1...max(1, lua.rawLength(at: list)) where index <= lua.rawLength(at: list) {
            lua.getIndex(index, table: list)
            let item = lua.top()
            lua.getField("stage", table: item)
            let stage = Stage(rawValue: lua.string(at: -1) ?? "")!
            lua.getField("kind", table: item)
            let isAction = lua.string(at: -1) == "action"
            lua.getField("name", table: item)
            let name = lua.string(at: -1) ?? "?"
            lua.getField("where", table: item)
            let position = lua.string(at: -1) ?? ""
            lua.pop(5)
            entries[stage, default: []].append(RuleEntry(name: name, isAction: isAction, position: position))
        }
        lua.pushReference(self.byStageReference)
        lua.pushValue(at: list)
        if case .failure(let error) = lua.protectedCall(arguments: 1, results: 1) {
            throw RuleLoadError(error.message)
        }
        var stageLists: [Stage: Int32] = [:]
        for stage in entries.keys {
            lua.getField(stage.rawValue, table: -1)
            stageLists[stage] = lua.makeReference()
        }
        for reference in self.stageListReferences.values { lua.release(reference: reference) }
        self.stageListReferences = stageLists
        self.entries = entries
    }

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
        lua.pushValue(at: data)
        let dataReference = lua.makeReference()
        lua.pushReference(self.readonlyReference)
        lua.insert(at: -2)
        lua.pushString("ctx")
        guard case .success = lua.protectedCall(arguments: 2, results: 1) else {
            fatalError("cannot create a context proxy")
        }
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
            lua.makeTopReadonly(name: "ctx.rcpts")
            lua.setField("rcpts", table: data)
            if let last = session.rcpts.last { self.pushAddress(last) } else { lua.pushNil() }
            lua.setField("rcpt", table: data)
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

    private func pushAddress(_ address: MailAddress) {
        self.lua.newTable(fieldCount: 3)
        self.lua.pushString(address.address); self.lua.setField("address", table: -2)
        self.lua.pushString(address.localPart); self.lua.setField("local_part", table: -2)
        self.lua.pushString(address.domain); self.lua.setField("domain", table: -2)
        self.lua.makeTopReadonly(name: "address")
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

    // MARK: runs

    /// A run of `stage` on a coroutine of its own (pooled).
    func startRun(_ stage: Stage, resolver: any DNSResolving) -> StageRun {
        StageRun(host: self, stage: stage, resolver: resolver, thread: self.threads.acquire(from: self.lua))
    }

    /// After a run: the garbage of one that ran out of memory is collected at once, so the
    /// next transaction starts with the memory back.
    func afterRun(exceeded: LuaLimit?) {
        if exceeded == .memory || exceeded == .instructions || self.lua.memoryExceeded {
            self.lua.collectGarbageAfterFailure()
        }
    }

    /// Pushes `run_stage(list, ctx, tracing, cursor)` onto the thread; returns the argument count.
    func pushStageCall(_ stage: Stage, contextProxy: Int32, thread: StageThread) -> Int32 {
        self.lua.pushReference(self.runStageReference, thread.thread)
        self.lua.pushReference(self.stageListReferences[stage] ?? 0, thread.thread)
        self.lua.pushReference(contextProxy, thread.thread)
        self.lua.pushBoolean(self.tracing, thread.thread)
        self.lua.pushReference(thread.cursor, thread.thread)
        return 4
    }

    /// What `run_stage` returned: the deciding entry (nil when none did) and the verdict.
    func stageOutcome(_ stage: Stage, thread: LuaThreadHandle, results: Int32) -> (RuleEntry?, Verdict) {
        let lua = self.lua
        let base = lua.top(thread) - results
        defer { lua.setTop(0, thread) }
        guard results >= 2, let index = lua.integer(at: base + 1, thread), index > 0,
              let entries = self.entries[stage], index <= entries.count else {
            return (nil, Verdict(kind: .next))
        }
        let kind = VerdictKind(rawValue: lua.string(at: base + 2, thread) ?? "next") ?? .next
        var reply: SMTPReply?
        if results >= 5, let code = lua.integer(at: base + 3, thread), let enhanced = lua.string(at: base + 4, thread) {
            reply = SMTPReply(code: code, enhanced: enhanced, text: lua.string(at: base + 5, thread) ?? "")
        }
        return (entries[index - 1], Verdict(kind: kind, reply: reply))
    }

    /// The entry running in an evaluation (the one that failed, or that logs). Each stage
    /// thread has its own cursor, so concurrent transactions cannot overwrite each other's.
    func currentEntry(_ stage: Stage, cursor: Int32) -> RuleEntry? {
        let lua = self.lua
        lua.pushReference(cursor)
        lua.getIndex(1, table: -1)
        let index = lua.integer(at: -1)
        lua.pop(2)
        guard let index, let entries = self.entries[stage], index >= 1, index <= entries.count else { return nil }
        return entries[index - 1]
    }

    /// The error a rule's coroutine died with: a DNS error (uncaught transient failure) or a message.
    func describeError(thread: LuaThreadHandle) -> (message: String, isDNSError: Bool) {
        let lua = self.lua
        var isDNSError = false
        if lua.getMetatable(at: -1, thread) {
            lua.pushReference(self.dnsErrorMetatableReference, thread)
            isDNSError = lua.rawEqual(-1, -2, thread)
            lua.pop(2, thread)
        }
        lua.moveTop(from: thread, to: lua.L)
        let message = lua.errorMessage(at: -1)
        lua.pop()
        return (message, isDNSError)
    }

    func pushDNSError(_ error: DNSError, thread: LuaThreadHandle) {
        let lua = self.lua
        lua.newTable(fieldCount: 4, thread)
        lua.pushString(error.kind.rawValue, thread); lua.setField("kind", table: -2, thread)
        lua.pushString(error.name, thread); lua.setField("name", table: -2, thread)
        lua.pushString(error.type.description, thread); lua.setField("type", table: -2, thread)
        if let detail = error.detail { lua.pushString(detail, thread); lua.setField("detail", table: -2, thread) }
        lua.pushReference(self.dnsErrorMetatableReference, thread)
        lua.setMetatable(at: -2, thread)
    }

    /// After a yielded DNS call finished: pushes `(true, values...)` or `(false, error)`.
    func pushCompletion(_ call: any PendingDNSCall, thread: LuaThreadHandle, trace: inout Trace) -> Int32 {
        self.lua.pushBoolean(true, thread)
        switch call.pushResult(host: self, thread: thread, trace: &trace) {
        case .success(let count):
            return count + 1
        case .failure(let error):
            self.lua.pop(1, thread)
            self.lua.pushBoolean(false, thread)
            self.pushDNSError(error, thread: thread)
            return 2
        }
    }

    // MARK: host calls

    func callHostFunction(_ id: Int32, thread: LuaThread) -> LuaHostReturn {
        guard let function = HostFunction(rawValue: id) else {
            self.lua.pushString("unknown host function", thread)
            return .error
        }
        let run = StageRun.current(on: thread)
        switch function {
        case .log:
            let level = self.lua.string(at: 1, thread) ?? "info"
            let message = self.lua.string(at: 2, thread) ?? ""
            let rule = run?.currentEntry?.name
            run?.record(.log(level: level, rule: rule, message: message))
            self.logHandler?(RuleLogRecord(level: level, message: message, rule: rule, stage: run?.stage))
            return .values(0)
        case .readModule:
            return self.readModule(thread: thread)
        case .makeReply:
            let arguments = (1...3).map { self.lua.replyArgument(at: Int32($0), thread) }
            return self.pushReplyValidation(ReplyValidation.make(code: arguments[0], enhanced: arguments[1], text: arguments[2]),
                                            thread: thread)
        case .parseReply:
            return self.pushReplyValidation(ReplyValidation.parse(self.lua.string(at: 1, thread) ?? ""), thread: thread)
        case .checkReply:
            guard let kind = VerdictKind(rawValue: self.lua.string(at: 1, thread) ?? ""),
                  let code = self.lua.integer(at: 2, thread),
                  let problem = ReplyValidation.check(SMTPReply(code: code, enhanced: "", text: ""), for: kind) else {
                return .values(0)
            }
            self.lua.pushString(problem.message, thread)
            return .values(1)
        case .suggest:
            var candidates: [String] = []
            self.lua.forEachPair(table: 2, thread) {
                if let name = self.lua.string(at: -1, thread) { candidates.append(name) }
            }
            guard let word = self.lua.string(at: 1, thread), let nearest = Spelling.nearest(to: word, in: candidates) else {
                return .values(0)
            }
            self.lua.pushString(nearest, thread)
            return .values(1)
        case .traceRule:
            guard let run, let index = self.lua.integer(at: 1, thread),
                  let entries = self.entries[run.stage], index >= 1, index <= entries.count else { return .values(0) }
            let entry = entries[index - 1]
            var decision = self.lua.string(at: 2, thread) ?? "next"
            if let code = self.lua.integer(at: 3, thread), let enhanced = self.lua.string(at: 4, thread) {
                decision += " " + SMTPReply(code: code, enhanced: enhanced, text: self.lua.string(at: 5, thread) ?? "").description
            }
            run.record(.rule(name: entry.name, kind: entry.kind, decision: decision))
            return .values(0)
        default:
            guard let run else {
                self.lua.pushString("dns.* may not be called while the script loads; call it inside a rule", thread)
                return .error
            }
            return self.startDNSCall(function, run: run, thread: thread)
        }
    }

    /// `code, enhanced, text` of a valid reply, or `nil, message`.
    private func pushReplyValidation(_ result: Result<SMTPReply, ReplyValidation.Violation>, thread: LuaThread) -> LuaHostReturn {
        switch result {
        case .success(let reply):
            self.lua.pushInteger(reply.code, thread)
            self.lua.pushString(reply.enhanced, thread)
            self.lua.pushString(reply.text, thread)
            return .values(3)
        case .failure(let violation):
            self.lua.pushNil(thread)
            self.lua.pushString(violation.message, thread)
            return .values(2)
        }
    }

    private func readModule(thread: LuaThread) -> LuaHostReturn {
        let name = self.lua.string(at: 1, thread) ?? ""
        switch ModuleLocator(rulesDirectory: self.rulesDirectory).source(of: name) {
        case .success(let (source, path)):
            self.lua.pushString(source, thread)
            self.lua.pushString(path, thread)
            return .values(2)
        case .failure(let error):
            self.lua.pushString(error.message, thread)
            return .error
        }
    }
}

/// A `log.*` line from a script, tagged with where it came from.
public struct RuleLogRecord: Sendable, Hashable {
    public var level: String
    public var message: String
    public var rule: String?
    public var stage: Stage?
}
