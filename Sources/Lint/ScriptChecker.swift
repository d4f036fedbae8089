import DNS
import Foundation
import OperatorFiles
import Rules
import RuleTesting

/// Checks Lua files: rule scripts with the modules they `require`, and test files.
///
/// Everything about a script's code is found statically from its bytecode. Only the stage
/// table needs the script's top level to run (unknown stage keys, duplicate names, entries
/// that are not rules): that is done once per rule script, in the engine's own sandbox,
/// and its error is mapped back to a position in the source.
final class ScriptChecker {
    private let api: HostAPI
    /// Files already reported (a module required by two scripts is reported once).
    private var reported = Set<String>()
    private(set) var diagnostics: [Diagnostic] = []
    /// Blocklist zones the checked scripts name in `dns.dnsbl` calls, with where.
    private(set) var dnsblZones: [(zone: String, path: String, line: Int)] = []

    /// The limits the scripts load under: `[limits] memory` of the configuration, so that a
    /// script `vrules serve` could not load fails here too.
    private let limits: RuleLimits

    init(api: HostAPI = .current, limits: RuleLimits = RuleLimits()) {
        self.api = api
        self.limits = limits
    }

    /// One compiled file of a program.
    struct Unit {
        var path: String
        var source: SourceText
        var chunk: BinaryChunk
    }

    // MARK: rule scripts

    /// The modules `path` reaches through constant `require`s (nothing is reported).
    static func requiredModules(of path: String, api: HostAPI = .current) -> Set<String> {
        let directory = (path as NSString).deletingLastPathComponent
        let base = directory.isEmpty ? "." : directory
        var found = Set<String>()
        var queue = [path]
        while let file = queue.popLast() {
            guard let text = try? ScriptFile.source(atPath: file),
                  case .compiled(let chunk) = LuaCompiler.compile(text, chunkName: file) else { continue }
            var analyzer = BytecodeAnalyzer(scope: GlobalScope(api: api), checksLoadTimeCalls: false, checksRuleAPI: false)
            analyzer.analyze(chunk)
            for required in analyzer.requires {
                if case .success(let module) = ModuleLocator(rulesDirectory: base).path(of: required.name),
                   found.insert(Self.canonical(module)).inserted {
                    queue.append(module)
                }
            }
        }
        return found
    }

    static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// Checks the rule script at `path` and, following `require`, its modules.
    func checkRuleScript(path: String) {
        let rulesDirectory = (path as NSString).deletingLastPathComponent
        guard let entry = self.compile(path: path) else { return }

        // Compile every module reachable through constant `require`s.
        var units = [entry]
        var queue = [entry]
        var seen: Set<String> = [path]
        var moduleFailed = false
        let probe = GlobalScope(api: self.api)
        while let unit = queue.popLast() {
            var analyzer = BytecodeAnalyzer(scope: probe, checksLoadTimeCalls: false, checksRuleAPI: false)
            analyzer.analyze(unit.chunk)
            for required in analyzer.requires {
                guard let modulePath = self.resolve(required, in: rulesDirectory, from: unit) else {
                    moduleFailed = true
                    continue
                }
                guard seen.insert(modulePath).inserted else { continue }
                guard let module = self.compile(path: modulePath) else {
                    moduleFailed = true
                    continue
                }
                units.append(module)
                queue.append(module)
            }
        }

        // Globals any file of the program defines at load time are readable in all of them.
        var scope = GlobalScope(api: self.api)
        for unit in units { scope.defined.formUnion(BytecodeAnalyzer.topLevelDefinitions(of: unit.chunk)) }
        var staticErrors = Set<String>()
        for unit in units where self.reported.insert(unit.path).inserted || unit.path == path {
            var analyzer = BytecodeAnalyzer(scope: scope, checksLoadTimeCalls: true, checksRuleAPI: true)
            analyzer.analyze(unit.chunk)
            self.dnsblZones += analyzer.dnsblZones.map { ($0.zone, unit.path, $0.line) }
            for finding in analyzer.findings {
                let diagnostic = self.locate(finding, in: unit)
                if diagnostic.severity == .error { staticErrors.insert("\(diagnostic.path):\(diagnostic.line)") }
                self.diagnostics.append(diagnostic)
            }
        }

        // Run the top level in the sandbox for the stage table, unless a module is missing
        // or broken (that is already reported, and loading would only repeat it).
        guard !moduleFailed else { return }
        let sources = Dictionary(units.map { ($0.path, $0.source) }, uniquingKeysWith: { first, _ in first })
        let loaded = self.load(entry: entry, rulesDirectory: rulesDirectory, sources: sources)
        for diagnostic in loaded.diagnostics where !staticErrors.contains("\(diagnostic.path):\(diagnostic.line)") {
            self.diagnostics.append(diagnostic)
        }
        for diagnostic in Self.entriesThatEndTheirStage(loaded.definitions, units: units)
        where self.reported.insert("order:\(diagnostic.path):\(diagnostic.line):\(diagnostic.code)").inserted {
            self.diagnostics.append(diagnostic)
        }
        // A module's function used at preq by several scripts is reported once.
        for diagnostic in Self.headersAtEndOfData(loaded.definitions, units: units)
        where self.reported.insert("preq:\(diagnostic.path):\(diagnostic.line):\(diagnostic.column)").inserted {
            self.diagnostics.append(diagnostic)
        }
    }

    /// `ctx.add_header` in the code of a `preq` entry, of the functions nested in it, and of
    /// the functions those call, however deep: local functions of their file (`local function
    /// stamp(ctx)`), and functions a file of the program stores in a table field
    /// (`function util.stamp(ctx)`) where a call reads a field of that name from a table
    /// (`util.stamp(ctx)`; matched by name). Postfix adds no header at end of data, so
    /// `vrules serve` cannot deliver it (found from where the loaded entry's function is
    /// defined).
    static func headersAtEndOfData(_ definitions: [RuleDefinition], units: [Unit]) -> [Diagnostic] {
        /// A function of the program: its file among `units` and its path in that file.
        struct Place: Hashable {
            var unit: Int
            var path: [Int]
        }
        struct Line: Hashable {
            var unit: Int
            var line: Int
        }
        var fieldFunctions: [String: [Place]] = [:]
        for (index, unit) in units.enumerated() {
            for (name, paths) in BytecodeAnalyzer.fieldFunctions(in: unit.chunk.main) {
                fieldFunctions[name, default: []] += paths.map { Place(unit: index, path: $0) }
            }
        }
        var found: [Diagnostic] = []
        for definition in definitions where definition.stage.isEndOfData {
            guard let function = definition.function else { continue }
            let path = Self.checkedPath(of: function.path) { path in units.contains { $0.path == path } }
            // A line where two functions start cannot tell which is the entry's.
            guard let unitIndex = units.firstIndex(where: { $0.path == path }),
                  Self.functionCount(definedAt: function.line, in: units[unitIndex].chunk.main) == 1,
                  let entryPath = Self.path(definedAt: function.line, in: units[unitIndex].chunk.main) else { continue }
            let entry = Place(unit: unitIndex, path: entryPath)
            // Each line, and whether it is in a function the entry calls rather than its own code.
            var lines: [Line: Bool] = [:]
            var visited: Set<Place> = [entry]
            var queue = [(place: entry, called: false)]
            while let (next, called) = queue.popLast() {
                let main = units[next.unit].chunk.main
                guard let function = BytecodeAnalyzer.prototype(at: next.path, in: main) else { continue }
                for line in BytecodeAnalyzer.fieldReads(named: "add_header", in: function, nested: false) {
                    let at = Line(unit: next.unit, line: line)
                    if lines[at] != false { lines[at] = called }
                }
                var reached = function.prototypes.indices.map { (place: Place(unit: next.unit, path: next.path + [$0]), called: called) }
                reached += function.upvalues.indices.compactMap {
                    BytecodeAnalyzer.localFunction(upvalue: $0, of: next.path, in: main).map {
                        (place: Place(unit: next.unit, path: $0), called: true)
                    }
                }
                for name in BytecodeAnalyzer.fieldsReadFromUpvalues(in: function) {
                    reached += (fieldFunctions[name] ?? []).map { (place: $0, called: true) }
                }
                for item in reached where visited.insert(item.place).inserted { queue.append(item) }
            }
            for (at, called) in lines.sorted(by: { ($0.key.unit, $0.key.line) < ($1.key.unit, $1.key.line) }) {
                let unit = units[at.unit], line = at.line
                let entry = called ? "'\(definition.name)', in a function it calls" : "'\(definition.name)'"
                let column = unit.source.rawColumn(of: "add_header", line: line) ?? unit.source.firstCodeColumn(line: line)
                found.append(Diagnostic(
                    path: unit.path, line: line, column: column, severity: .warning,
                    message: "a header added at preq (\(entry)) cannot reach the message: \(Stage.endOfDataHeaderAdvice)",
                    code: DiagnosticCode.headerAtEndOfData))
            }
        }
        return found
    }

    /// Entries whose function returns a verdict whatever happens (every `return` it can reach
    /// is `return accept()`, `defer(...)` or `reject(...)`): the entries after it in its stage
    /// never run, and an action's verdict is an error, so its stage defers every time.
    static func entriesThatEndTheirStage(_ definitions: [RuleDefinition], units: [Unit]) -> [Diagnostic] {
        var found: [Diagnostic] = []
        /// Per stage, the entry that ends it every time: where it is, and what to say of it
        /// (`%@` stands for where, named as `line N` in the same file).
        var endedBy: [Stage: (path: String, line: Int, text: String)] = [:]
        for definition in definitions {
            guard let function = definition.function else { continue }
            let line = function.line
            let path = Self.checkedPath(of: function.path) { path in units.contains { $0.path == path } }
            guard let unit = units.first(where: { $0.path == path }) else { continue }
            let kind = definition.isAction ? "action" : "rule"
            let column = unit.source.rawColumn(of: kind, line: line) ?? unit.source.firstCodeColumn(line: line)
            if let earlier = endedBy[definition.stage] {
                let place = earlier.path == unit.path ? "line \(earlier.line)" : "\(earlier.path):\(earlier.line)"
                found.append(Diagnostic(
                    path: unit.path, line: line, column: column, severity: .warning,
                    message: "\(kind) '\(definition.name)' never runs: " + earlier.text.replacingOccurrences(of: "%@", with: place),
                    code: DiagnosticCode.unreachableEntry))
                continue
            }
            // A line where two functions start cannot tell which is the entry's.
            guard Self.functionCount(definedAt: line, in: unit.chunk.main) == 1,
                  let functionPath = Self.path(definedAt: line, in: unit.chunk.main),
                  let prototype = BytecodeAnalyzer.prototype(at: functionPath, in: unit.chunk.main),
                  let verdict = BytecodeAnalyzer.unconditionalVerdict(of: prototype) else { continue }
            if definition.isAction {
                found.append(Diagnostic(
                    path: unit.path, line: line, column: column, severity: .error,
                    message: "action '\(definition.name)' returns \(verdict) every time: an action's verdict is an error, "
                        + "so the \(definition.stage.rawValue) stage defers (451 4.3.0) every time (make it a rule)",
                    code: DiagnosticCode.actionVerdict))
                endedBy[definition.stage] = (unit.path, line, "action '\(definition.name)' (%@) ends the "
                    + "\(definition.stage.rawValue) stage in an error every time")
            } else {
                endedBy[definition.stage] = (unit.path, line, "rule '\(definition.name)' (%@) returns \(verdict) "
                    + "every time the \(definition.stage.rawValue) stage runs, and its verdict ends the stage (put it last, or give it a condition)")
            }
        }
        return found
    }

    /// How many functions start at `line`.
    static func functionCount(definedAt line: Int, in function: LuaPrototype) -> Int {
        (function.lineDefined == line && !function.isMainChunk ? 1 : 0)
            + function.prototypes.reduce(0) { $0 + Self.functionCount(definedAt: line, in: $1) }
    }

    /// The path (`BytecodeAnalyzer.prototype(at:in:)`) of the first function defined at `line`.
    static func path(definedAt line: Int, in function: LuaPrototype) -> [Int]? {
        if function.lineDefined == line { return [] }
        for (index, nested) in function.prototypes.enumerated() {
            if let found = Self.path(definedAt: line, in: nested) { return [index] + found }
        }
        return nil
    }

    /// A module file checked on its own (under a directory given to `vrules check` but not
    /// required by any script there): code checks only, no stage table.
    func checkModule(path: String) {
        guard self.reported.insert(path).inserted, let unit = self.compile(path: path) else { return }
        var scope = GlobalScope(api: self.api)
        scope.defined.formUnion(BytecodeAnalyzer.topLevelDefinitions(of: unit.chunk))
        var analyzer = BytecodeAnalyzer(scope: scope, checksLoadTimeCalls: true, checksRuleAPI: true)
        analyzer.analyze(unit.chunk)
        self.diagnostics += analyzer.findings.map { self.locate($0, in: unit) }
    }

    /// A test file: syntax, globals read that its (empty) environment does not have, and what
    /// `vrules test` refuses in its declarations (it is read as `vrules test` reads it).
    func checkTestFile(path: String) {
        guard self.reported.insert(path).inserted, let unit = self.compile(path: path) else { return }
        var scope = GlobalScope(known: Set(TestFileGlobals.names), tables: [:])
        scope.defined.formUnion(BytecodeAnalyzer.topLevelDefinitions(of: unit.chunk))
        var analyzer = BytecodeAnalyzer(scope: scope, checksLoadTimeCalls: false, checksRuleAPI: false)
        analyzer.environmentIsReadOnly = false
        analyzer.analyze(unit.chunk)
        let findings = analyzer.findings.map { self.locate($0, in: unit) }
        self.diagnostics += findings
        // A global the file reads is nil when it runs: that error is already reported.
        guard !findings.contains(where: { $0.severity == .error }) else { return }
        do {
            _ = try RuleTestFileLoader(defaultRulesPath: "rules/main.lua").load(path: path)
        } catch {
            self.diagnostics.append(Self.diagnostic(forTestError: error.message, unit: unit))
        }
    }

    /// Where a test file's refusal points: the line of a Lua error, else the zone fixture,
    /// the key or stage it names, or the test it names, else the top of the file.
    static func diagnostic(forTestError message: String, unit: Unit) -> Diagnostic {
        var text = message
        var position: (line: Int, column: Int)?
        if let match = message.firstMatch(of: #/^(.+?):(\d+): (.*)$/#.dotMatchesNewlines()), String(match.1) == unit.path,
           let line = Int(match.2) {
            text = String(match.3)
            position = (line, unit.source.firstCodeColumn(line: line))
        }
        if position == nil, text.hasPrefix("zone: ") {
            position = unit.source.firstKey("zone") ?? unit.source.firstKey("zone_file")
        }
        for pattern in [#/unknown (?:key|stage) '([^']+)'/#, #/^test '([^']+)'/#] where position == nil {
            guard let name = text.firstMatch(of: pattern)?.1 else { continue }
            position = unit.source.firstKey(String(name)) ?? Self.firstLine(containing: "\"\(name)\"", in: unit.source)
        }
        let at = position ?? (1, 1)
        return Diagnostic(path: unit.path, line: at.line, column: at.column, severity: .error,
                          message: text, code: DiagnosticCode.invalidTest)
    }

    static func firstLine(containing text: String, in source: SourceText) -> (line: Int, column: Int)? {
        for line in 1...max(1, source.lineCount) {
            if let column = source.rawColumn(of: text, line: line) { return (line, column) }
        }
        return nil
    }

    // MARK: compiling

    private func compile(path: String) -> Unit? {
        let text: String
        do {
            text = try ScriptFile.source(atPath: path)
        } catch {
            self.diagnostics.append(Diagnostic(path: path, line: 1, column: 1, severity: .error,
                                               message: "cannot read file: \(error.reason)", code: DiagnosticCode.unreadable))
            return nil
        }
        let source = SourceText(text)
        switch LuaCompiler.compile(text, chunkName: path) {
        case .compiled(let chunk):
            return Unit(path: path, source: source, chunk: chunk)
        case .syntaxError(let message, let line):
            if self.reported.insert("syntax:" + path).inserted {
                self.diagnostics.append(Diagnostic(path: path, line: line, column: Self.syntaxColumn(message, line: line, in: source),
                                                   severity: .error, message: message, code: DiagnosticCode.syntaxError))
            }
            return nil
        case .unreadableDump(let error):
            self.diagnostics.append(Diagnostic(path: path, line: 1, column: 1, severity: .error,
                                               message: "internal error: cannot read the compiled chunk (\(error))",
                                               code: DiagnosticCode.loadError))
            return nil
        }
    }

    /// Lua says `... near 'token'` (or `near <eof>`): the column is where that token is.
    static func syntaxColumn(_ message: String, line: Int, in source: SourceText) -> Int {
        if message.hasSuffix("near <eof>") { return source.endColumn(line: line) }
        guard let start = message.range(of: " near '", options: .backwards), message.hasSuffix("'") else {
            return source.firstCodeColumn(line: line)
        }
        let token = String(message[start.upperBound..<message.index(before: message.endIndex)])
        return source.rawColumn(of: token, line: line) ?? source.firstCodeColumn(line: line)
    }

    private func resolve(_ required: BytecodeAnalyzer.Required, in directory: String, from unit: Unit) -> String? {
        switch ModuleLocator(rulesDirectory: directory).path(of: required.name) {
        case .success(let path):
            return path
        case .failure(let failure):
            let column = unit.source.rawColumn(of: "\"\(required.name)\"", line: required.line)
                ?? unit.source.rawColumn(of: "'\(required.name)'", line: required.line)
                ?? unit.source.column(of: "require", line: required.line, usage: .global) ?? 1
            self.diagnostics.append(Diagnostic(path: unit.path, line: required.line, column: column, severity: .error,
                                               message: failure.message, code: DiagnosticCode.moduleNotFound))
            return nil
        }
    }

    // MARK: positions

    /// Findings of one line are numbered per identifier, so the second `acept` on a line
    /// points at the second occurrence.
    private var occurrences: [String: Int] = [:]

    private func locate(_ finding: Finding, in unit: Unit) -> Diagnostic {
        let key = "\(unit.path):\(finding.line):\(finding.anchor):\(finding.usage)"
        let occurrence = self.occurrences[key, default: 0]
        self.occurrences[key] = occurrence + 1
        let column = unit.source.column(of: finding.anchor, line: finding.line, usage: finding.usage, occurrence: occurrence)
            ?? unit.source.column(of: finding.anchor, line: finding.line, usage: finding.usage)
            ?? unit.source.column(of: finding.anchor, line: finding.line, usage: .any)
            ?? unit.source.firstCodeColumn(line: finding.line)
        return Diagnostic(path: unit.path, line: finding.line, column: column, severity: finding.severity,
                          message: finding.message, code: finding.code)
    }

    // MARK: the load run

    private static let noDNS = SingleResolver(ZoneResolver(records: []))

    /// Loads the script in the engine's sandbox: each problem of the load as a diagnostic, or,
    /// when it loads, where its entries' functions are defined.
    private func load(entry: Unit, rulesDirectory: String,
                      sources: [String: SourceText]) -> (diagnostics: [Diagnostic], definitions: [RuleDefinition]) {
        let text = String(decoding: entry.source.bytes, as: UTF8.self)
        do {
            let engine = try RuleEngine(source: text, path: entry.path, rulesDirectory: rulesDirectory.isEmpty ? "." : rulesDirectory,
                                        resolvers: Self.noDNS, limits: self.limits, tracing: false)
            return ([], engine.ruleDefinitions)
        } catch {
            return (error.problems.map { Self.diagnostic(forLoadError: $0, entry: entry, sources: sources) }, [])
        }
    }

    static func diagnostic(forLoadError message: String, entry: Unit, sources: [String: SourceText]) -> Diagnostic {
        // "path:line: text" (an error raised by code), or "path: text" (the stage table).
        var path = entry.path
        var line: Int?
        var text = message
        if message.hasPrefix(entry.path + ": ") {
            text = String(message.dropFirst(entry.path.count + 2))
        } else if let match = message.firstMatch(of: #/^(.+?):(\d+): (.*)$/#.dotMatchesNewlines()) {
            path = String(match.1)
            line = Int(match.2)
            text = String(match.3)
        }
        path = Self.checkedPath(of: path) { sources[$0] != nil }
        let source = sources[path] ?? entry.source
        let code = Self.code(forLoadMessage: text)
        var position = (line: line ?? 1, column: 1)
        if let line {
            let anchors: [(String, SourceText.Usage)] = [("rule", .global), ("action", .global), ("dns", .global),
                                                         ("reply", .global), ("reject", .global), ("defer", .global),
                                                         ("accept", .global)]
            var column: Int?
            if let name = text.firstMatch(of: #/global '([A-Za-z_][A-Za-z0-9_]*)'/#)?.1 {
                column = source.column(of: String(name), line: line, usage: .global)
            }
            if column == nil, code != DiagnosticCode.loadError {
                column = anchors.lazy.compactMap { source.column(of: $0.0, line: line, usage: $0.1) }.first
            }
            position = (line, column ?? source.firstCodeColumn(line: line))
        } else if let stage = text.firstMatch(of: #/stage '([^']*)'/#)?.1, let key = source.firstKey(String(stage)) {
            position = key
        }
        return Diagnostic(path: path, line: position.line, column: position.column, severity: .error, message: text, code: code)
    }

    /// The path the checker read a file under, for the name the engine gives it: the engine
    /// names modules of a script in the current directory `./lib/x.lua`.
    static func checkedPath(of enginePath: String, isChecked: (String) -> Bool) -> String {
        guard enginePath.hasPrefix("./"), !isChecked(enginePath) else { return enginePath }
        let stripped = String(enginePath.dropFirst(2))
        return isChecked(stripped) ? stripped : enginePath
    }

    static func code(forLoadMessage text: String) -> String {
        if text.contains("unknown stage") { return DiagnosticCode.unknownStage }
        if text.contains("duplicate rule name") { return DiagnosticCode.duplicateRule }
        if text.contains("expected a function, got") { return DiagnosticCode.notAFunction }
        if text.contains("name must be a non-empty string") { return DiagnosticCode.invalidRuleName }
        if text.contains("may not be called while the script loads") { return DiagnosticCode.dnsAtLoad }
        if text.contains("undefined global") { return DiagnosticCode.undefinedGlobal }
        if text.contains("read-only") { return DiagnosticCode.readOnlyWrite }
        if text.contains("must be a list of rule") || text.contains("non-list key") || text.contains("not a rule(...)") {
            return DiagnosticCode.invalidStage
        }
        if text.contains("reply") || text.contains("enhanced status code") { return DiagnosticCode.invalidReply }
        return DiagnosticCode.loadError
    }
}
