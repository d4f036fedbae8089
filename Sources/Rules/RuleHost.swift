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
    case dnsDNSBL
    case spfCheckHost
    case addHeader
    case log
    case readModule
    case traceRule
    case makeReply
    case parseReply
    case checkReply
    case suggest

    /// How a script calls it (DNS functions; the others are not named to scripts this way).
    var scriptName: String {
        switch self {
        case .dnsLookup: return "dns.lookup"
        case .dnsRlookup: return "dns.rlookup"
        case .dnsLocateMX: return "dns.locate_mx"
        case .dnsIprev: return "dns.iprev"
        case .dnsQuery: return "dns.query"
        case .dnsDNSBL: return "dns.dnsbl"
        case .spfCheckHost: return "spf.check"
        default: return "ctx." + self.luaName
        }
    }

    var luaName: String {
        switch self {
        case .dnsLookup: return "dns_lookup"
        case .dnsRlookup: return "dns_rlookup"
        case .dnsLocateMX: return "dns_locate_mx"
        case .dnsIprev: return "dns_iprev"
        case .dnsQuery: return "dns_query"
        case .dnsDNSBL: return "dns_dnsbl"
        case .spfCheckHost: return "spf_check_host"
        case .addHeader: return "add_header"
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
    /// Where the entry's function is defined (file and line), for `vrules check`; nil for a C function.
    var definition: (path: String, line: Int)?
}

/// Owns one Lua state with the sandbox and the loaded rules, and answers host calls.
/// Not thread-safe: `RuleEngine` (an actor) is its only user.
final class RuleHost: LuaHostDispatching {
    let lua: LuaState
    let limits: RuleLimits
    let rulesDirectory: String
    var tracing = true
    var queryObserver: (@Sendable (DNSQuestion, String) -> Void)?
    /// Sees each SPF check's result, and whether it was an earlier check's, reused.
    var spfObserver: (@Sendable (SPFResult.Kind, _ reused: Bool) -> Void)?
    var logHandler: (@Sendable (RuleLogRecord) -> Void)?
    /// Lines the script logged while it loaded (a stage counts its own: `StageRun`).
    var loadLoggedLines = 0
    /// Sees each log line dropped and each DNS call refused past a stage's bound; for metrics.
    var boundObserver: (@Sendable (StageBound) -> Void)?

    private(set) var environmentReference: Int32 = 0
    private(set) var compileReference: Int32 = 0
    private(set) var dnsErrorMetatableReference: Int32 = 0
    private(set) var stateReference: Int32 = 0
    private(set) var globalsReference: Int32 = 0
    private(set) var runStageReference: Int32 = 0
    private(set) var byStageReference: Int32 = 0
    private(set) var addHeaderReference: Int32 = 0
    /// `ctx.rcpts` before any recipient: one read-only empty list for every transaction.
    private(set) var emptyRecipientsReference: Int32 = 0
    /// Per stage, the Lua list of its entries that `run_stage` walks.
    var stageListReferences = PerStage<Int32>()

    var entries = PerStage<[RuleEntry]>()
    var threads = StageThreadPool()
    /// What each DNS blocklist's answers mean (`dns.dnsbl`), and whether each zone passes
    /// its test points.
    var dnsblPolicies = DNSBLPolicies()
    let dnsblHealth = DNSBLHealth()
    /// What the host functions' closures point at (kept alive here).
    private var hostReference: LuaHostReference?

    init(limits: RuleLimits, rulesDirectory: String) {
        LuaHostDispatch.install()
        self.lua = LuaState(memoryLimit: limits.memoryBytes)
        self.lua.useGenerationalCollector()
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
        let dispatchTarget = LuaHostReference(self)
        self.hostReference = dispatchTarget
        for function in HostFunction.allCases {
            lua.pushHostFunction(host: dispatchTarget.pointer, id: function.rawValue)
            lua.setField(named: function.luaName, table: hostTable)
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
        self.dnsErrorMetatableReference = reference("dns_error_mt")
        self.globalsReference = reference("globals")
        self.runStageReference = reference("run_stage")
        self.addHeaderReference = reference("add_header")
        lua.getField("by_stage", table: exports)
        self.byStageReference = lua.makeReference()
        lua.pop()
        lua.newTable()
        lua.makeTopReadonly(name: "ctx.rcpts")
        self.emptyRecipientsReference = lua.makeReference()
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
            lua.setField(named: library, table: -2)
        }
        lua.setField("allow", table: hostTable)
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
            let rule = run?.currentEntry?.name
            let lines: Int
            if let run {
                run.loggedLines += 1
                lines = run.loggedLines
            } else {
                self.loadLoggedLines += 1
                lines = self.loadLoggedLines
            }
            let limit = self.limits.logLinesPerStage
            guard lines <= limit else {
                self.boundObserver?(.logLines)
                // `log_lines = 0` silences the rules: no notice either.
                if lines == limit + 1 && limit > 0 {
                    let message = "log lines past \(limit) in one \(run == nil ? "load" : "stage") are dropped ([limits] log_lines)"
                    run?.record(.log(level: "warn", rule: rule, message: message))
                    self.logHandler?(RuleLogRecord(level: "warn", message: message, rule: rule, stage: run?.stage))
                }
                return .values(0)
            }
            let level = self.lua.string(at: 1, thread) ?? "info"
            let message = self.lua.string(at: 2, thread, cutAt: Self.maximumLogMessageBytes) ?? ""
            run?.record(.log(level: level, rule: rule, message: message))
            self.logHandler?(RuleLogRecord(level: level, message: message, rule: rule, stage: run?.stage))
            return .values(0)
        case .readModule:
            return self.readModule(thread: thread)
        case .addHeader:
            guard let run else {
                self.lua.pushString("ctx.add_header may not be called while the script loads", thread)
                return .error
            }
            guard let name = self.lua.string(at: 1, thread), let value = self.lua.string(at: 2, thread) else {
                self.lua.pushString("ctx.add_header(name, value): expected two strings", thread)
                return .error
            }
            switch MessageHeader.validated(name: name, value: value) {
            case .success(let header):
                run.add(header)
                return .values(0)
            case .failure(let violation):
                self.lua.pushString(violation.message, thread)
                return .error
            }
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
            // Refused even when the answer is at hand (zone files, the cache): a call that
            // works under `vrules test` must not fail in `serve` only when it has to wait.
            guard self.lua.isYieldable(thread) else {
                self.lua.pushString(Self.notYieldableMessage(function), thread)
                return .error
            }
            return self.startDNSCall(function, run: run, thread: thread)
        }
    }

    static func notYieldableMessage(_ function: HostFunction) -> String {
        "\(function.scriptName) cannot wait for DNS inside a callback of a C function (table.sort's comparison, "
            + "string.gsub's replacement, __tostring, an xpcall handler...): call it in the rule itself"
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

    /// The most bytes of one `log.*` message kept: a rule that logs a whole request, or a
    /// string it built by mistake, would otherwise write a line of any size per request to
    /// the log of `vrules serve` (journald splits lines past 48 KiB).
    static let maximumLogMessageBytes = 4_096

    private func readModule(thread: LuaThread) -> LuaHostReturn {
        let name = self.lua.string(at: 1, thread) ?? ""
        switch ModuleLocator(rulesDirectory: self.rulesDirectory).source(of: name) {
        case .success(let (source, path)):
            self.lua.pushString(source, thread)
            self.lua.pushString(path, thread)
            return .values(2)
        case .failure(let error):
            // Raised at the line of the script's `require` (the trampoline skips the prelude).
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
