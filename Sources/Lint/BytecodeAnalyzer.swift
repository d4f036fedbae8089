import DNS
import Policy
import Rules
import Spelling

/// A finding of the bytecode analysis: a line from the debug information and the
/// identifier to point at on it (the column is found in the source afterwards).
struct Finding: Hashable {
    var line: Int
    var anchor: String
    var usage: SourceText.Usage
    var severity: Diagnostic.Severity
    var message: String
    var code: String
}

/// What a script, module or test file may refer to, from `HostAPI.current`.
struct GlobalScope {
    /// Names readable everywhere: the host API, plus whatever else the file kind adds.
    var known: Set<String>
    /// Host tables and their members (functions and constant fields).
    var tables: [String: Set<String>]
    /// Globals the program's files define at their top level.
    var defined: Set<String> = []

    init(known: Set<String>, tables: [String: Set<String>]) {
        self.known = known
        self.tables = tables
    }

    init(api: HostAPI, extra: [String] = []) {
        self.known = api.globalNames.union(extra)
        var tables: [String: Set<String>] = [:]
        for table in api.tables {
            let fields = table.fields.map { String($0.prefix { $0 != ":" }) }
            tables[table.name] = Set(table.functions.map(\.name) + fields)
        }
        self.tables = tables
    }

    func isReadable(_ name: String) -> Bool { self.known.contains(name) || self.defined.contains(name) }
}

/// Static checks over the compiled bytecode of one chunk: global reads and writes on the
/// `_ENV` upvalue, fields of host tables, literal replies given to `reply`/`accept`/
/// `defer`/`reject`, `rule`/`action` entries whose function is a constant, DNS calls from
/// the main chunk's own code, and `require` of constant names.
///
/// Registers are followed along straight-line code only: at every jump target what is
/// known about them is forgotten, so a value is only trusted where the compiler put it
/// just before its use (which is how Lua compiles `dns.lookup(x)` or `reject(reply(...))`).
struct BytecodeAnalyzer {
    /// What the analysis knows about a register.
    enum Value: Hashable {
        case unknown
        case constant(LuaConstant)
        /// A global read through `_ENV` (not a host table).
        case global(String)
        /// A host table (`dns`, `log`, `replies`, ...).
        case hostTable(String)
        /// A field of a host table.
        case member(table: String, name: String)
        /// The result of a `reply(...)` call with constant arguments that validated.
        case reply(SMTPReply)
        /// A function defined here: the index of its prototype among the function's own.
        case closure(Int)
        /// The function's `ctx` parameter, while its register holds it.
        case context
        /// A table the function made here (`{}`), and whether it holds the `ctx` parameter.
        case newTable(holdsContext: Bool)
        /// A field of the `ctx` parameter (`client.ip`): a value of the transaction.
        case contextField(String)
        /// A table every transaction shares: a local of the main chunk reached as an
        /// upvalue, a global the script defined, or a field of either.
        case sharedTable(String)
        /// What a `dns.*` or `spf.*` function returned (`dns.lookup`): always a table.
        case hostResult(String)
    }

    struct Required: Hashable {
        var name: String
        var line: Int
    }

    let scope: GlobalScope
    /// Whether top-level code runs at load time (rule scripts and their modules).
    let checksLoadTimeCalls: Bool
    /// Whether to judge the rule API's calls (replies, rule/action entries).
    let checksRuleAPI: Bool
    /// Whether the environment is read-only once loaded (rule scripts, not test files).
    var environmentIsReadOnly = true

    private(set) var findings: [Finding] = []
    /// Shared tables a function adds an entry to under a key of the transaction, with the
    /// first such line and the key; and the shared tables some code removes entries from.
    private var growingTables: [String: (line: Int, key: String)] = [:]
    private var shrinkingTables: Set<String> = []
    private(set) var requires: [Required] = []
    /// Blocklist zones named as constants in `dns.dnsbl(subject, "zone")` or
    /// `dns.dnsbl(subject, { "zone", ... })` calls, with their lines.
    private(set) var dnsblZones: [(zone: String, line: Int)] = []

    init(scope: GlobalScope, checksLoadTimeCalls: Bool, checksRuleAPI: Bool) {
        self.scope = scope
        self.checksLoadTimeCalls = checksLoadTimeCalls
        self.checksRuleAPI = checksRuleAPI
    }

    /// Names a chunk's main function assigns as globals (definitions, allowed at load time).
    static func topLevelDefinitions(of chunk: BinaryChunk) -> [String] {
        let main = chunk.main
        var names: [String] = []
        for raw in main.code {
            let instruction = LuaInstruction(raw)
            guard instruction.opcode == .setTabUp, Self.isEnvironment(main, upvalue: instruction.a),
                  let name = Self.constant(main, instruction.b)?.stringValue else { continue }
            names.append(name)
        }
        return names
    }

    mutating func analyze(_ chunk: BinaryChunk) {
        self.analyze(chunk.main, sharedUpvalues: [])
        self.warnGrowingTables()
    }

    /// `sharedUpvalues`: the indices of the function's upvalues that are locals of the main
    /// chunk (the script's or a module's), which every transaction shares. `isEntry`: the
    /// function is given to `rule(name, fn)` or `action(name, fn)` where it is made, so its
    /// first parameter is the transaction's `ctx` whatever it is named.
    private mutating func analyze(_ function: LuaPrototype, sharedUpvalues: Set<Int>, isEntry: Bool = false) {
        let code = function.code.map(LuaInstruction.init)
        var jumpTargets = Set<Int>()
        for (pc, instruction) in code.enumerated() {
            if let target = instruction.jumpTarget(at: pc) { jumpTargets.insert(target) }
        }
        var registers = [Value](repeating: .unknown, count: Int(function.maxStackSize) + 256)
        /// A `ctx` parameter the function never overwrites is known at every instruction.
        let keepsContext = function.parameterCount > 0 && (isEntry || function.parameterNames.first == "ctx")
            && !Self.writesFirstRegister(code)
        /// The prototypes given to `rule`/`action` as their function, by index.
        var entryFunctions = Set<Int>()
        if keepsContext { registers[0] = .context }
        /// After a call with open results (C = 0), the first register past the fixed arguments.
        var openTop: Int?
        /// The parts of `ctx` (`mail_from`, `rcpt`) whose emptiness this entry has looked at
        /// by now: a DNS call on their domain after that is taken as guarded.
        var emptinessTested = Set<String>()
        let line = { (pc: Int) -> Int in pc < function.lines.count ? function.lines[pc] : function.lineDefined }

        for (pc, instruction) in code.enumerated() {
            if jumpTargets.contains(pc) {
                for index in registers.indices { registers[index] = .unknown }
                if keepsContext { registers[0] = .context }
                openTop = nil
            }
            guard let opcode = instruction.opcode else { continue }
            let a = instruction.a
            switch opcode {
            case .move:
                registers[a] = registers[instruction.b]
            case .loadI:
                registers[a] = .constant(.integer(Int64(instruction.sbx)))
            case .loadF:
                registers[a] = .constant(.float(Double(instruction.sbx)))
            case .loadK:
                registers[a] = Self.constant(function, instruction.bx).map(Value.constant) ?? .unknown
            case .loadFalse, .lFalseSkip:
                registers[a] = .constant(.boolean(false))
            case .loadTrue:
                registers[a] = .constant(.boolean(true))
            case .loadNil:
                for index in a...(a + instruction.b) where index < registers.count { registers[index] = .constant(.nil) }
            case .getTabUp:
                guard Self.isEnvironment(function, upvalue: instruction.b),
                      let name = Self.constant(function, instruction.c)?.stringValue else {
                    // `shared.key` of a shared local table (Lua indexes any upvalue this way).
                    registers[a] = sharedUpvalues.contains(instruction.b)
                        ? .sharedTable(function.upvalues[instruction.b].name ?? "?") : .unknown
                    break
                }
                registers[a] = self.readGlobal(name, line: line(pc))
            case .getUpval:
                if sharedUpvalues.contains(instruction.b) {
                    registers[a] = .sharedTable(function.upvalues[instruction.b].name ?? "?")
                } else {
                    registers[a] = .unknown
                }
            case .getField:
                if let name = self.sharedTableName(registers[instruction.b]) {
                    registers[a] = .sharedTable(name)
                    break
                }
                if let key = Self.constant(function, instruction.c)?.stringValue, let path = Self.contextPath(registers[instruction.b]) {
                    registers[a] = .contextField(path.isEmpty ? key : path + "." + key)
                    break
                }
                registers[a] = self.readField(of: registers[instruction.b], key: Self.constant(function, instruction.c),
                                              line: line(pc))
            case .getTable, .getI:
                registers[a] = self.sharedTableName(registers[instruction.b]).map(Value.sharedTable) ?? .unknown
            case .`self`:
                let key = instruction.k ? Self.constant(function, instruction.c) : nil
                let object = registers[instruction.b]
                registers[a + 1] = object
                if case .hostTable = object {
                    registers[a] = key == nil ? .unknown : self.readField(of: object, key: key, line: line(pc))
                } else {
                    // `text:gsub(...)` on a string is string.gsub with the text first.
                    registers[a] = key?.stringValue == "gsub" ? .member(table: "string", name: "gsub") : .unknown
                }
            case .setTabUp:
                if Self.isEnvironment(function, upvalue: a), let name = Self.constant(function, instruction.b)?.stringValue {
                    self.writeGlobal(name, inMainChunk: function.isMainChunk, line: line(pc))
                } else if sharedUpvalues.contains(a) {
                    self.checkKeptContext(table: .sharedTable(function.upvalues[a].name ?? "?"),
                                          value: instruction.k ? .unknown : registers[instruction.c], line: line(pc))
                }
            case .setField:
                if case .hostTable(let table) = registers[a], let key = Self.constant(function, instruction.b)?.stringValue {
                    self.findings.append(Finding(
                        line: line(pc), anchor: key, usage: .member, severity: .error,
                        message: "'\(table)' is read-only: cannot assign '\(table).\(key)'", code: DiagnosticCode.readOnlyWrite))
                }
                let value = instruction.k ? Self.constant(function, instruction.c).map(Value.constant) ?? .unknown : registers[instruction.c]
                self.noteSharedWrite(table: registers[a], key: .unknown, value: value, line: line(pc))
                self.store(value, into: &registers[a], line: line(pc))
            case .setTable, .setI:
                let value = instruction.k ? Self.constant(function, instruction.c).map(Value.constant) ?? .unknown : registers[instruction.c]
                // The table and the key are often known only before a branch in the value
                // (`t[ip] = (t[ip] or 0) + 1`): read back through it.
                var table = registers[a]
                if table == .unknown, let name = Self.sharedTableName(ofRegister: a, before: pc, in: code, function: function,
                                                                    sharedUpvalues: sharedUpvalues) {
                    table = .sharedTable(name)
                }
                var key = opcode == .setTable ? registers[instruction.b] : .unknown
                if opcode == .setTable, key == .unknown, keepsContext,
                   let path = Self.contextPath(ofRegister: instruction.b, before: pc, in: code, function: function) {
                    key = .contextField(path)
                }
                self.noteSharedWrite(table: table, key: key, value: value, line: line(pc))
                self.store(value, into: &registers[a], line: line(pc))
            case .newTable:
                registers[a] = .newTable(holdsContext: false)
            case .setList:
                // `{ ctx }`: the values are in the registers after the table's.
                let count = instruction.b == 0 ? (openTop.map { max(0, $0 - a) } ?? 0) : instruction.b
                if registers[(a + 1)..<min(a + 1 + count, registers.count)].contains(.context) {
                    registers[a] = .newTable(holdsContext: true)
                }
            case .closure:
                registers[a] = .closure(instruction.bx)
            case .call, .tailCall:
                let arguments: [Value]
                if instruction.b == 0 {
                    let end = max(openTop ?? (a + 1), a + 1)
                    arguments = Array(registers[(a + 1)..<min(end + 1, registers.count)])
                } else {
                    arguments = Array(registers[(a + 1)..<min(a + instruction.b, registers.count)])
                }
                self.checkCallbacks(of: registers[a], arguments: arguments, in: function, line: line(pc))
                if isEntry && keepsContext {
                    self.checkEmptyDomain(callee: registers[a], arguments: arguments, tested: &emptinessTested, line: line(pc))
                }
                self.checkArgumentKind(callee: registers[a], arguments: arguments, line: line(pc))
                // `reject(...)` as a statement: the verdict is made and dropped (C = 1 keeps no result).
                if self.checksRuleAPI, opcode == .call, instruction.c == 1, case .global(let verdict) = registers[a],
                   Self.verdicts.contains(verdict) {
                    self.findings.append(Finding(
                        line: line(pc), anchor: verdict, usage: .global, severity: .warning,
                        message: "\(verdict)(...) makes a verdict and drops it: nothing is decided and the rule goes on; "
                            + "write 'return \(verdict)(...)'",
                        code: DiagnosticCode.verdictDropped))
                }
                if case .global(let kind) = registers[a], kind == "rule" || kind == "action", arguments.count >= 2,
                   case .closure(let index) = arguments[1] {
                    entryFunctions.insert(index)
                }
                if case .member(table: "table", name: "insert") = registers[a], let first = arguments.first,
                   arguments.count >= 2, let last = arguments.last {
                    self.checkKeptContext(table: first, value: last, line: line(pc))
                }
                if case .member(table: "table", name: "remove") = registers[a], let first = arguments.first,
                   let name = self.sharedTableName(first) {
                    self.shrinkingTables.insert(name)
                }
                var result = self.call(registers[a], arguments: arguments, openArguments: instruction.b == 0,
                                       inMainChunk: function.isMainChunk, line: line(pc))
                if case .member(let table, let name) = registers[a], Self.waitingMembers.contains(table + "." + name) {
                    result = .hostResult(table + "." + name)
                }
                for index in a..<registers.count { registers[index] = .unknown }
                registers[a] = result
                openTop = (opcode == .call && instruction.c == 0) ? a : nil
                continue
            case .vararg, .tForCall, .forPrep, .tForPrep, .forLoop, .tForLoop:
                for index in a..<registers.count { registers[index] = .unknown }
            case .setUpval:
                if self.checksLoadTimeCalls && sharedUpvalues.contains(instruction.b) {
                    self.warnSharedAssignment(function.upvalues[instruction.b].name, line: line(pc))
                    // `seen = {}`: a table started afresh.
                    if let name = function.upvalues[instruction.b].name { self.shrinkingTables.insert(name) }
                }
            case .eqK:
                let constant = Self.constant(function, instruction.b).map(Value.constant) ?? .unknown
                self.checkComparison(registers[a], constant, ordered: false, line: line(pc))
                Self.noteEmptinessTest(registers[a], constant, into: &emptinessTested)
            case .eq, .lt, .le:
                self.checkComparison(registers[a], registers[instruction.b], ordered: opcode != .eq, line: line(pc))
                if opcode == .eq { Self.noteEmptinessTest(registers[a], registers[instruction.b], into: &emptinessTested) }
            case .len:
                if case .contextField(let path) = registers[instruction.b], let part = Self.emptiablePart(of: path) {
                    emptinessTested.insert(part)
                }
                registers[a] = .unknown
            case .test:
                self.checkCondition(registers[a], register: a, pc: pc, in: function, line: line(pc))
            case .not:
                self.checkCondition(registers[instruction.b], register: instruction.b, pc: pc, in: function, line: line(pc))
                registers[a] = .unknown
            case .jmp, .eqI, .ltI, .leI, .gtI, .geI,
                 .return, .return0, .return1, .mmBin, .mmBinI, .mmBinK, .extraArg, .varargPrep, .close, .tbc:
                break
            default:
                registers[a] = .unknown
            }
            if opcode != .call { openTop = opcode == .vararg ? a : nil }
        }

        for (childIndex, child) in function.prototypes.enumerated() {
            var shared = Set<Int>()
            for (index, upvalue) in child.upvalues.enumerated() {
                if upvalue.inStack ? function.isMainChunk : sharedUpvalues.contains(Int(upvalue.index)) { shared.insert(index) }
            }
            self.analyze(child, sharedUpvalues: shared, isEntry: entryFunctions.contains(childIndex))
        }
    }

    // MARK: comparisons

    /// The fields of `ctx` that hold a domain lower-cased, whatever case the client sent.
    static let lowercasedContextFields: Set<String> = ["mail_from.domain", "rcpt.domain", "domain"]

    /// The fields of `ctx` that hold integers (Postfix sends them as text).
    static let numericContextFields: Set<String> = ["client.port", "server.port"]

    /// `ctx.server.port == "587"`: a port is an integer, and Lua's `==` between a number and a
    /// string is false whatever they hold (`~=` true), and `<` raises; so the rule never
    /// matches, or its stage fails (451) every time it compares.
    private mutating func checkComparison(_ left: Value, _ right: Value, ordered: Bool, line: Int) {
        for (field, other) in [(left, right), (right, left)] where !ordered {
            guard case .contextField(let path) = field, Self.lowercasedContextFields.contains(path),
                  case .constant(.string(let text)) = other, text.lowercased() != text else { continue }
            let shown = String(text.prefix(60))
            self.findings.append(Finding(
                line: line, anchor: String(path.split(separator: ".").last ?? ""), usage: .member, severity: .warning,
                message: "'ctx.\(path)' is lower-cased: compared with \"\(shown)\" it is never equal "
                    + "(write \"\(shown.lowercased())\")",
                code: DiagnosticCode.neverEqual))
            return
        }
        for (field, other) in [(left, right), (right, left)] {
            guard case .contextField(let path) = field, Self.numericContextFields.contains(path),
                  case .constant(.string(let text)) = other else { continue }
            let shown = String(text.prefix(40))
            let outcome = ordered ? "it raises an error when the rule runs" : "it is never equal"
            let advice = Int(text) != nil ? " (write \(text) without quotes)" : ""
            self.findings.append(Finding(
                line: line, anchor: String(path.split(separator: ".").last ?? ""), usage: .member, severity: .error,
                message: "'ctx.\(path)' is a number: compared with the string \"\(shown)\" \(outcome)\(advice)",
                code: DiagnosticCode.numberComparedWithString))
            return
        }
    }

    // MARK: conditions

    /// What to test instead of a host function's result, which is always a table.
    private static let resultTests: [String: String] = [
        "dns.lookup": "its second result (the outcome) or #addresses", "dns.rlookup": "its second result (the outcome) or #names",
        "dns.query": "its second result (the outcome) or #records", "dns.locate_mx": ".kind", "dns.iprev": ".status",
        "dns.dnsbl": "each entry's .status", "spf.check": ".result", "spf.check_host": ".result",
    ]

    /// The functions whose table lists what was found, and is empty when nothing was.
    private static let listingMembers: Set<String> = ["dns.lookup", "dns.rlookup", "dns.query"]

    /// `if dns.lookup(name) then`, `not dns.iprev(ip)`: the function returns a table whatever
    /// it finds (an empty one for no address) and raises on trouble, so the condition is
    /// true every time. Only a result tested where it was returned, not a named local: a
    /// local tested for nil before its fields are read (`route and route.kind`) only repeats
    /// what is known.
    private mutating func checkCondition(_ value: Value, register: Int, pc: Int, in function: LuaPrototype, line: Int) {
        guard case .hostResult(let name) = value, !function.isLocal(register, at: pc) else { return }
        self.findings.append(Finding(
            line: line, anchor: String(name.split(separator: ".").last ?? ""), usage: .member, severity: .warning,
            message: "\(name)() always returns a table\(Self.listingMembers.contains(name) ? " (an empty one when nothing is found)" : ""), "
                + "so as a condition it is always true: test \(Self.resultTests[name] ?? "what it holds")",
            code: DiagnosticCode.alwaysTrue))
    }

    // MARK: names and addresses

    /// The fields of `ctx` that hold an IP address, and those that hold a name.
    static let addressContextFields: Set<String> = ["client.ip", "server.ip"]
    static let nameContextFields: Set<String> = ["helo", "client.name", "server.name", "mail_from.domain", "rcpt.domain", "domain"]

    /// `dns.lookup(ctx.client.ip)`: an address asked for as a name (no such name exists; the
    /// names of an address are `dns.rlookup`'s); `dns.iprev(ctx.helo)`: a name where an
    /// address is taken, a script error every time, so the stage is deferred.
    private mutating func checkArgumentKind(callee: Value, arguments: [Value], line: Int) {
        guard case .member(table: "dns", name: let name) = callee, case .contextField(let path)? = arguments.first else { return }
        let message: String
        if ["lookup", "locate_mx", "query"].contains(name) && Self.addressContextFields.contains(path) {
            message = "'ctx.\(path)' is an IP address: dns.\(name) asks for it as a domain name, which never exists "
                + "(dns.rlookup gives an address's names, dns.iprev confirms them)"
        } else if ["rlookup", "iprev"].contains(name) && Self.nameContextFields.contains(path) {
            message = "'ctx.\(path)' holds a name, not an IP address: dns.\(name) raises an error for a name, so the stage "
                + "is deferred (451 4.3.0) for each one (dns.lookup gives a name's addresses)"
        } else {
            return
        }
        self.findings.append(Finding(line: line, anchor: name, usage: .member, severity: .warning, message: message,
                                     code: DiagnosticCode.wrongArgumentKind))
    }

    // MARK: empty domains

    /// The DNS functions that refuse the empty name as a script error.
    static let nameTakingDNSFunctions: Set<String> = ["lookup", "locate_mx", "query", "dnsbl"]

    /// `mail_from` or `rcpt` for a path below one of them (`mail_from.address`), else nil.
    private static func emptiablePart(of path: String) -> String? {
        for part in ["mail_from", "rcpt"] where path == part || path.hasPrefix(part + ".") { return part }
        return nil
    }

    /// `ctx.mail_from.address == ""`, `ctx.rcpt.domain ~= ""`: the entry looks at the emptiness.
    private static func noteEmptinessTest(_ left: Value, _ right: Value, into tested: inout Set<String>) {
        for (field, other) in [(left, right), (right, left)] {
            guard case .contextField(let path) = field, let part = Self.emptiablePart(of: path),
                  case .constant(.string("")) = other else { continue }
            tested.insert(part)
        }
    }

    /// `dns.locate_mx(ctx.mail_from.domain)` in an entry that never looked whether the
    /// domain is empty: for a bounce (`MAIL FROM:<>`) or `RCPT TO:<postmaster>` it is `""`,
    /// which the DNS functions refuse as a script error, so the stage is deferred every time.
    /// A function of the script's own given `ctx` or the address may test it, so such a
    /// call counts as a test: the warning is for what is certain to fail.
    private mutating func checkEmptyDomain(callee: Value, arguments: [Value], tested: inout Set<String>, line: Int) {
        switch callee {
        case .member(table: "dns", name: let name) where Self.nameTakingDNSFunctions.contains(name):
            guard case .contextField(let path)? = arguments.first, path == "mail_from.domain" || path == "rcpt.domain",
                  let part = Self.emptiablePart(of: path), !tested.contains(part) else { return }
            let (whose, guardText) = part == "mail_from"
                ? ("a bounce (MAIL FROM:<>)", "ctx.mail_from.address == \"\"")
                : ("RCPT TO:<postmaster>", "ctx.rcpt.domain == \"\"")
            self.findings.append(Finding(
                line: line, anchor: name, usage: .member, severity: .warning,
                message: "dns.\(name)(ctx.\(path)): the domain is \"\" for \(whose) and the empty name is a script error, "
                    + "so the stage is deferred (451 4.3.0) for every one; test \(guardText) first",
                code: DiagnosticCode.emptyDomain))
            tested.insert(part)
        case .member, .hostTable:
            return
        default:
            for argument in arguments {
                switch argument {
                case .context, .newTable(holdsContext: true):
                    tested.formUnion(["mail_from", "rcpt"])
                case .contextField(let path):
                    if let part = Self.emptiablePart(of: path) { tested.insert(part) }
                default:
                    break
                }
            }
        }
    }

    // MARK: globals and fields

    private mutating func readGlobal(_ name: String, line: Int) -> Value {
        if !self.scope.isReadable(name) {
            let hint = Spelling.hint(for: name, in: self.scope.known.union(self.scope.defined))
            self.findings.append(Finding(line: line, anchor: name, usage: .global, severity: .error,
                                         message: "undefined global '\(name)'\(hint)", code: DiagnosticCode.undefinedGlobal))
            return .unknown
        }
        if self.scope.tables[name] != nil && !self.scope.defined.contains(name) { return .hostTable(name) }
        return .global(name)
    }

    private mutating func readField(of object: Value, key: LuaConstant?, line: Int) -> Value {
        guard case .hostTable(let table) = object, let name = key?.stringValue else { return .unknown }
        let members = self.scope.tables[table] ?? []
        guard members.contains(name) else {
            let hint = Spelling.hint(for: name, in: members)
            self.findings.append(Finding(line: line, anchor: name, usage: .member, severity: .error,
                                         message: "unknown field '\(name)' of '\(table)'\(hint)", code: DiagnosticCode.unknownMember))
            return .unknown
        }
        return .member(table: table, name: name)
    }

    private mutating func writeGlobal(_ name: String, inMainChunk: Bool, line: Int) {
        if !inMainChunk && self.environmentIsReadOnly {
            self.findings.append(Finding(
                line: line, anchor: name, usage: .global, severity: .error,
                message: "assignment to global '\(name)' inside a function: globals are read-only while rules run (use ctx.vars or a local)",
                code: DiagnosticCode.globalWrite))
        } else if self.scope.known.contains(name) {
            self.findings.append(Finding(line: line, anchor: name, usage: .global, severity: .warning,
                                         message: "redefines the built-in global '\(name)'", code: DiagnosticCode.shadowedGlobal))
        }
    }

    /// A function assigns a local of the main chunk: one variable for every transaction the
    /// Lua state serves at once, so a value kept there for a later stage can be another
    /// session's by then (`vrules test` runs one session at a time and cannot show it).
    private mutating func warnSharedAssignment(_ name: String?, line: Int) {
        guard let name else { return }
        self.findings.append(Finding(
            line: line, anchor: name, usage: .global, severity: .warning,
            message: "assignment to '\(name)', a local of the script's top level, inside a function: every transaction "
                + "running at once shares it (keep a transaction's values in ctx.vars)",
            code: DiagnosticCode.sharedLocal))
    }

    /// The name of the shared table `value` is, if it is one.
    private func sharedTableName(_ value: Value) -> String? {
        switch value {
        case .sharedTable(let name): return name
        case .global(let name) where self.scope.defined.contains(name): return name
        default: return nil
        }
    }

    /// The path below `ctx` of a value that is `ctx` ("") or one of its fields.
    private static func contextPath(_ value: Value) -> String? {
        switch value {
        case .context: return ""
        case .contextField(let path): return path
        default: return nil
        }
    }

    /// The path below `ctx` (register 0, never overwritten) of what `register` holds at `pc`,
    /// from the instructions that last wrote it and its tables (`ctx.client.ip`), read back
    /// through branches that do not write it.
    private static func contextPath(ofRegister register: Int, before pc: Int, in code: [LuaInstruction],
                                    function: LuaPrototype) -> String? {
        guard register != 0 else { return "" }
        guard let write = Self.lastWrite(of: register, before: pc, in: code), code[write].opcode == .getField,
              let key = Self.constant(function, code[write].c)?.stringValue,
              let path = Self.contextPath(ofRegister: code[write].b, before: write, in: code, function: function) else { return nil }
        return path.isEmpty ? key : path + "." + key
    }

    /// The shared table (a local of the main chunk reached as an upvalue, or a table inside
    /// it) that `register` holds at `pc`, from the instructions that last wrote it.
    private static func sharedTableName(ofRegister register: Int, before pc: Int, in code: [LuaInstruction],
                                        function: LuaPrototype, sharedUpvalues: Set<Int>) -> String? {
        guard let write = Self.lastWrite(of: register, before: pc, in: code) else { return nil }
        let instruction = code[write]
        switch instruction.opcode {
        case .getUpval?:
            return sharedUpvalues.contains(instruction.b) ? function.upvalues[instruction.b].name : nil
        case .getTabUp?:
            return !Self.isEnvironment(function, upvalue: instruction.b) && sharedUpvalues.contains(instruction.b)
                ? function.upvalues[instruction.b].name : nil
        case .getField?, .getTable?, .getI?:
            return Self.sharedTableName(ofRegister: instruction.b, before: write, in: code, function: function,
                                        sharedUpvalues: sharedUpvalues)
        default:
            return nil
        }
    }

    /// `shared[key] = value` in a function: an entry under a value of the transaction
    /// (`seen[ctx.client.ip] = true`) makes the table grow with the traffic; an entry set
    /// to nil shows that some code removes entries.
    private mutating func noteSharedWrite(table: Value, key: Value, value: Value, line: Int) {
        guard self.checksLoadTimeCalls, case .sharedTable(let name) = table else { return }
        if value == .constant(.nil) {
            self.shrinkingTables.insert(name)
        } else if case .contextField(let path) = key, self.growingTables[name] == nil {
            self.growingTables[name] = (line, "ctx." + path)
        }
    }

    /// A table every transaction adds to under its own key and that no code empties grows
    /// with the traffic until the Lua state's memory is full.
    private mutating func warnGrowingTables() {
        for (name, growth) in self.growingTables.sorted(by: { $0.value.line < $1.value.line })
        where !self.shrinkingTables.contains(name) {
            self.findings.append(Finding(
                line: growth.line, anchor: name, usage: .global, severity: .warning,
                message: "'\(name)' gains an entry for each \(growth.key) and no code here removes one: it grows with the "
                    + "traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty "
                    + "(remove old entries: set them to nil)",
                code: DiagnosticCode.growingTable))
        }
    }

    /// `table[key] = value`: a table made here that takes the `ctx` now holds it.
    private mutating func store(_ value: Value, into table: inout Value, line: Int) {
        if case .newTable = table, value == .context || value == .newTable(holdsContext: true) {
            table = .newTable(holdsContext: true)
            return
        }
        self.checkKeptContext(table: table, value: value, line: line)
    }

    /// A rule stores its `ctx`, or a table it made that holds it, in a table every
    /// transaction shares: read there after its transaction ended, that ctx raises an error
    /// (`vrules test` plays one transaction per engine and cannot show it).
    private mutating func checkKeptContext(table: Value, value: Value, line: Int) {
        guard self.checksLoadTimeCalls, value == .context || value == .newTable(holdsContext: true),
              let name = self.sharedTableName(table) else { return }
        self.findings.append(Finding(
            line: line, anchor: name, usage: .global, severity: .warning,
            message: "'\(name)' keeps a transaction's ctx: a ctx read after its transaction ended raises an error "
                + "(copy the fields a later transaction needs)",
            code: DiagnosticCode.keptContext))
    }

    /// What a function returns whatever happens: every `return` it can reach is a tail call
    /// of `accept`, `defer` or `reject` (with any arguments), along every branch and loop; no
    /// path returns nothing or another value. `accept()` (or the one verdict it returns), or
    /// `a verdict` when the paths differ; nil when any path may return something else.
    static func unconditionalVerdict(of function: LuaPrototype) -> String? {
        let code = function.code.map(LuaInstruction.init)
        var jumpTargets = Set<Int>()
        for (pc, instruction) in code.enumerated() {
            if let target = instruction.jumpTarget(at: pc) { jumpTargets.insert(target) }
        }
        var reached = Set<Int>()
        var pending = [0]
        var verdicts = Set<String>()
        while let pc = pending.popLast() {
            guard pc >= 0, pc < code.count, reached.insert(pc).inserted else { continue }
            let instruction = code[pc]
            switch instruction.opcode {
            case .tailCall?:
                // A tail call returns what the callee returns; the RETURN after it is not reached.
                guard let verdict = Self.verdictCalled(at: pc, in: code, of: function, jumpTargets: jumpTargets) else { return nil }
                verdicts.insert(verdict)
            case .return?, .return0?, .return1?:
                return nil
            case .jmp?, .lFalseSkip?, .tForPrep?:
                // Never the next instruction.
                if let target = instruction.jumpTarget(at: pc) { pending.append(target) }
            default:
                pending.append(pc + 1)
                if let target = instruction.jumpTarget(at: pc) { pending.append(target) }
            }
        }
        guard let first = verdicts.first else { return nil }
        return verdicts.count == 1 ? first + "()" : "a verdict"
    }

    /// The verdict constructor the tail call at `pc` calls: its function register written by
    /// reading the global in the same straight run of code (no jump lands between).
    private static func verdictCalled(at pc: Int, in code: [LuaInstruction], of function: LuaPrototype,
                                      jumpTargets: Set<Int>) -> String? {
        let callee = code[pc].a
        guard let load = Self.lastWrite(of: callee, before: pc, in: code),
              !jumpTargets.contains(where: { $0 > load && $0 <= pc }),
              code[load].opcode == .getTabUp, Self.isEnvironment(function, upvalue: code[load].b),
              let name = Self.constant(function, code[load].c)?.stringValue, Self.verdicts.contains(name) else { return nil }
        return name
    }

    /// The pc of the last instruction before `pc` that writes `register`, in program order
    /// (the branches between are not told apart: for the linter's look-backs only).
    static func lastWrite(of register: Int, before pc: Int, in code: [LuaInstruction]) -> Int? {
        code[..<pc].lastIndex { $0.a == register && $0.writesA }
    }

    /// Whether any instruction writes register 0 (a function's first parameter).
    private static func writesFirstRegister(_ code: [LuaInstruction]) -> Bool {
        code.contains { $0.a == 0 && $0.writesA }
    }

    /// A function by the indices that lead to it from the main chunk, prototype by prototype.
    static func prototype(at path: [Int], in main: LuaPrototype) -> LuaPrototype? {
        var function = main
        for index in path {
            guard index < function.prototypes.count else { return nil }
            function = function.prototypes[index]
        }
        return function
    }

    /// The path of the local function that the function at `path` refers to as its upvalue
    /// `index`: a closure the enclosing function holds in a local (`local function stamp(ctx)
    /// ... end`), found where it last wrote that register before creating the function, or,
    /// for an upvalue of the enclosing function, the same one level up. Nil when the register
    /// was last written by anything but a closure, or for `_ENV`.
    static func localFunction(upvalue index: Int, of path: [Int], in main: LuaPrototype) -> [Int]? {
        guard let created = path.last, let function = Self.prototype(at: path, in: main), index < function.upvalues.count else {
            return nil
        }
        let parentPath = Array(path.dropLast())
        guard let parent = Self.prototype(at: parentPath, in: main) else { return nil }
        let upvalue = function.upvalues[index]
        guard upvalue.inStack else {
            return parentPath.isEmpty ? nil : Self.localFunction(upvalue: Int(upvalue.index), of: parentPath, in: main)
        }
        let code = parent.code.map(LuaInstruction.init)
        guard let creation = code.firstIndex(where: { $0.opcode == .closure && $0.bx == created }) else { return nil }
        let register = Int(upvalue.index)
        // A recursive local function captures the register it is being created into.
        if code[creation].a == register { return path }
        guard let write = Self.lastWrite(of: register, before: creation, in: code),
              code[write].opcode == .closure, code[write].bx < parent.prototypes.count else { return nil }
        return parentPath + [code[write].bx]
    }

    /// The functions a chunk's top level stores in table fields, by field name, as paths:
    /// `function M.stamp(ctx) ... end`, `M.stamp = function ... end`, and a local function
    /// put in a table (`return { stamp = stamp }`).
    static func fieldFunctions(in main: LuaPrototype) -> [String: [[Int]]] {
        let code = main.code.map(LuaInstruction.init)
        var found: [String: [[Int]]] = [:]
        for (pc, instruction) in code.enumerated() where instruction.opcode == .setField && !instruction.k {
            guard let name = Self.constant(main, instruction.b)?.stringValue,
                  let write = Self.lastWrite(of: instruction.c, before: pc, in: code) else { continue }
            var source = code[write]
            // A local moved into a constructor's register.
            if source.opcode == .move, let earlier = Self.lastWrite(of: source.b, before: write, in: code) {
                source = code[earlier]
            }
            if source.opcode == .closure, source.bx < main.prototypes.count { found[name, default: []].append([source.bx]) }
        }
        return found
    }

    /// The names of the fields a function reads from tables it holds as upvalues
    /// (`util.stamp` where `util` is a local of an enclosing function), not from `_ENV`.
    static func fieldsReadFromUpvalues(in function: LuaPrototype) -> Set<String> {
        let code = function.code.map(LuaInstruction.init)
        var names = Set<String>()
        for (pc, instruction) in code.enumerated() {
            switch instruction.opcode {
            case .getTabUp?:
                if !Self.isEnvironment(function, upvalue: instruction.b), let name = Self.constant(function, instruction.c)?.stringValue {
                    names.insert(name)
                }
            case .getField?:
                guard let name = Self.constant(function, instruction.c)?.stringValue,
                      let write = Self.lastWrite(of: instruction.b, before: pc, in: code),
                      code[write].opcode == .getUpval else { continue }
                names.insert(name)
            default:
                break
            }
        }
        return names
    }

    // MARK: calls

    private static let verdicts: Set<String> = ["accept", "defer", "reject"]

    private mutating func call(_ function: Value, arguments: [Value], openArguments: Bool, inMainChunk: Bool,
                               line: Int) -> Value {
        switch function {
        case .member(table: "dns", name: let name) where inMainChunk && self.checksLoadTimeCalls:
            self.findings.append(Finding(
                line: line, anchor: "dns", usage: .global, severity: .error,
                message: "dns.\(name)() called while the script loads: DNS is only available inside a rule or action",
                code: DiagnosticCode.dnsAtLoad))
            return .unknown
        case .member(table: "dns", name: "dnsbl"):
            if arguments.count > 1, case .constant(.string(let zone)) = arguments[1] {
                do {
                    _ = try DNSBLZone.name(zone)
                    self.dnsblZones.append((zone, line))
                } catch {
                    // Every call would raise this error when the rule runs.
                    self.findings.append(Finding(line: line, anchor: "dnsbl", usage: .member, severity: .error,
                                                 message: "dns.dnsbl: \(error)", code: DiagnosticCode.invalidZone))
                }
            }
            return .unknown
        case .global("require"):
            if case .constant(.string(let name))? = arguments.first { self.requires.append(Required(name: name, line: line)) }
            return .unknown
        case .global("reply") where self.checksRuleAPI:
            let constants = arguments.prefix(3).map { value -> LuaConstant?? in
                if case .constant(let constant) = value { return .some(constant) }
                return .none
            }
            // Every argument given must be a constant; a missing text is nil.
            guard !openArguments || arguments.count >= 3,
                  constants.allSatisfy({ $0 != nil }) else { return .unknown }
            let values = constants.map { $0! }
            switch ReplyValidation.make(code: .init(values.first ?? nil), enhanced: .init(values.count > 1 ? values[1] : nil),
                                        text: .init(values.count > 2 ? values[2] : nil)) {
            case .success(let reply): return .reply(reply)
            case .failure(let violation):
                self.findings.append(Finding(line: line, anchor: "reply", usage: .global, severity: .error,
                                             message: violation.message, code: DiagnosticCode.invalidReply))
                return .unknown
            }
        case .global(let verdict) where self.checksRuleAPI && Self.verdicts.contains(verdict):
            switch self.literalReply(verdict, argument: arguments.first) {
            case .failure(let violation):
                self.findings.append(Finding(line: line, anchor: verdict, usage: .global, severity: .error,
                                             message: violation.message, code: DiagnosticCode.invalidReply))
            case .success(let reply?):
                if let sent = PolicyReplyText.changedLine(for: reply) {
                    self.findings.append(Finding(line: line, anchor: verdict, usage: .global, severity: .warning,
                                                 message: "Postfix gets this reply as \"\(sent)\" (\(PolicyReplyText.changeReason))",
                                                 code: DiagnosticCode.replyChanged))
                }
            case .success(nil):
                break
            }
            return .unknown
        case .global(let kind) where self.checksRuleAPI && (kind == "rule" || kind == "action"):
            self.checkEntry(kind, arguments: arguments, openArguments: openArguments, line: line)
            return .unknown
        default:
            return .unknown
        }
    }

    /// The C functions that call a function they are given, and at which argument: there a
    /// `dns.*` or `spf.*` call cannot wait for its answer.
    private static let callingCFunctions: [String: (argument: Int, role: String)] = [
        "table.sort": (1, "table.sort's comparison"),
        "string.gsub": (2, "string.gsub's replacement function"),
        "xpcall": (1, "an xpcall message handler"),
    ]

    /// A function literal given to `table.sort`, `string.gsub` or as `xpcall`'s handler that
    /// calls `dns.*` or `spf.*` itself: each such call is refused when the rule runs.
    private mutating func checkCallbacks(of callee: Value, arguments: [Value], in function: LuaPrototype, line: Int) {
        let name: String
        switch callee {
        case .member(table: let table, name: let member): name = table + "." + member
        case .global(let global): name = global
        default: return
        }
        guard let (position, role) = Self.callingCFunctions[name], position < arguments.count,
              case .closure(let index) = arguments[position], index < function.prototypes.count else { return }
        for (callLine, called) in Self.dnsCalls(in: function.prototypes[index]) {
            self.findings.append(Finding(
                line: callLine, anchor: called.prefix { $0 != "." }.description, usage: .global, severity: .error,
                message: "\(called)() inside \(role) cannot wait for DNS (called from C): call it in the rule and keep the answer",
                code: DiagnosticCode.dnsInCallback))
        }
    }

    /// The lines where a function's own code reads a host function that waits for DNS
    /// (`waitingMembers`), with its name.
    private static func dnsCalls(in function: LuaPrototype) -> [(line: Int, name: String)] {
        var found: [(Int, String)] = []
        var tables: [Int: String] = [:]
        for (pc, raw) in function.code.enumerated() {
            let instruction = LuaInstruction(raw)
            switch instruction.opcode {
            case .getTabUp?:
                if Self.isEnvironment(function, upvalue: instruction.b),
                   let name = Self.constant(function, instruction.c)?.stringValue, name == "dns" || name == "spf" {
                    tables[instruction.a] = name
                } else {
                    tables[instruction.a] = nil
                }
            case .getField?, .`self`?:
                if let table = tables[instruction.b], let member = Self.constant(function, instruction.c)?.stringValue,
                   Self.waitingMembers.contains(table + "." + member) {
                    found.append((pc < function.lines.count ? function.lines[pc] : function.lineDefined, table + "." + member))
                }
                tables[instruction.a] = nil
            default:
                if instruction.opcode != nil { tables[instruction.a] = nil }
            }
        }
        return found
    }

    /// The lines where a function (or a function nested in it) reads a field or method of
    /// that name from any value: `ctx.add_header(...)`, `c:add_header(...)`.
    static func fieldReads(named name: String, in function: LuaPrototype, nested: Bool = true) -> [Int] {
        var lines: [Int] = []
        for (pc, raw) in function.code.enumerated() {
            let instruction = LuaInstruction(raw)
            switch instruction.opcode {
            case .getField?, .`self`?:
                if Self.constant(function, instruction.c)?.stringValue == name {
                    lines.append(pc < function.lines.count ? function.lines[pc] : function.lineDefined)
                }
            case .getTabUp?:
                // A field of an upvalue (`ctx` in a closure), not a global.
                if !Self.isEnvironment(function, upvalue: instruction.b), Self.constant(function, instruction.c)?.stringValue == name {
                    lines.append(pc < function.lines.count ? function.lines[pc] : function.lineDefined)
                }
            default:
                break
            }
        }
        return nested ? lines + function.prototypes.flatMap { Self.fieldReads(named: name, in: $0) } : lines
    }

    /// The host functions that may wait for DNS.
    private static let waitingMembers: Set<String> = [
        "dns.lookup", "dns.rlookup", "dns.locate_mx", "dns.iprev", "dns.query", "dns.dnsbl", "spf.check", "spf.check_host",
    ]

    /// The reply a verdict is given when it is known from the code (nil when it is not), or
    /// what is wrong with it.
    private func literalReply(_ verdict: String, argument: Value?) -> Result<SMTPReply?, ReplyValidation.Violation> {
        let reply: SMTPReply
        switch argument {
        case nil, .constant(.nil)?:
            return .success(nil)
        case .constant(.string(let text))?:
            switch ReplyValidation.parse(text) {
            case .success(let parsed): reply = parsed
            case .failure(let violation): return .failure(violation)
            }
        case .constant(let constant)?:
            return .failure(ReplyValidation.Violation(
                "expected a reply (reply(...), a \"CODE X.Y.Z text\" string or a replies constant), got \(ReplyValidation.Argument(constant).typeName)"))
        case .reply(let value)?:
            reply = value
        case .member(table: "replies", name: let name)?:
            guard let value = ReplyCatalogue.byName[name] else { return .success(nil) }
            reply = value
        default:
            return .success(nil)
        }
        guard let kind = VerdictKind(rawValue: verdict) else { return .success(nil) }
        if let violation = ReplyValidation.check(reply, for: kind) { return .failure(violation) }
        return .success(reply)
    }

    private mutating func checkEntry(_ kind: String, arguments: [Value], openArguments: Bool, line: Int) {
        let name = arguments.first
        switch name {
        case .constant(.string(let text))? where text.utf8.count > RuleNaming.maximumBytes:
            self.findings.append(Finding(line: line, anchor: kind, usage: .global, severity: .error,
                                         message: "\(kind)(name, fn): \(RuleNaming.tooLong(text))", code: DiagnosticCode.invalidRuleName))
            return
        case .constant(.string(let text))? where !text.isEmpty:
            break
        case .constant(let constant)?:
            self.findings.append(Finding(
                line: line, anchor: kind, usage: .global, severity: .error,
                message: "\(kind)(name, fn): name must be a non-empty string, got \(ReplyValidation.Argument(constant).typeName == "string" ? "an empty string" : ReplyValidation.Argument(constant).typeName)",
                code: DiagnosticCode.invalidRuleName))
            return
        default:
            break
        }
        let label: String
        if case .constant(.string(let text))? = name { label = "\(kind) '\(text)'" } else { label = kind }
        if arguments.count < 2 && !openArguments {
            self.findings.append(Finding(line: line, anchor: kind, usage: .global, severity: .error,
                                         message: "\(label): expected a function, got nil", code: DiagnosticCode.notAFunction))
            return
        }
        guard arguments.count >= 2 else { return }
        switch arguments[1] {
        case .constant(let constant):
            self.findings.append(Finding(line: line, anchor: kind, usage: .global, severity: .error,
                                         message: "\(label): expected a function, got \(ReplyValidation.Argument(constant).typeName)",
                                         code: DiagnosticCode.notAFunction))
        case .hostTable, .reply:
            self.findings.append(Finding(line: line, anchor: kind, usage: .global, severity: .error,
                                         message: "\(label): expected a function, got table", code: DiagnosticCode.notAFunction))
        default:
            break
        }
    }

    // MARK: prototype helpers

    static func isEnvironment(_ function: LuaPrototype, upvalue index: Int) -> Bool {
        index < function.upvalues.count && function.upvalues[index].name == "_ENV"
    }

    static func constant(_ function: LuaPrototype, _ index: Int) -> LuaConstant? {
        index >= 0 && index < function.constants.count ? function.constants[index] : nil
    }
}
