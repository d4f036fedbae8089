import DNS
import Foundation
import Lua
import OperatorFiles

/// Loading a script: running its top level in the sandbox, compiling its stage table, and
/// what the sandbox binds.
extension RuleHost {
    fileprivate func setLoading(_ loading: Bool) {
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
        // The globals table, a key and value, a metatable and its __index, a member's key and value.
        guard lua.reserve(8) else { return result }
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

    /// `64MiB`, `1536KiB` or `1000 bytes`: a cap as the configuration writes it.
    static func describe(bytes: Int) -> String {
        for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(unit)"
        }
        return "\(bytes) bytes"
    }

    /// Loads the rule script at `path` (its `require`s come from `rulesDirectory`).
    func load(path: String) throws(RuleLoadError) {
        let source: String
        do {
            source = try ScriptFile.source(atPath: path)
        } catch {
            throw RuleLoadError("\(path): cannot read rule script: \(error.reason)")
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
        if case .failure(let error) = ran {
            // Lua's own words ("not enough memory") name neither the script nor the cap.
            guard lua.memoryExceeded else { throw RuleLoadError(error.message) }
            throw RuleLoadError("\(path): memory limit exceeded while the script loads "
                + "(\(Self.describe(bytes: self.limits.memoryBytes)), [limits] memory)")
        }

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
        var entries = PerStage<[RuleEntry]>()
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
            lua.getField("source", table: item)
            let source = lua.string(at: -1)
            lua.getField("line", table: item)
            let line = lua.integer(at: -1)
            lua.pop(7)
            var definition: (path: String, line: Int)?
            if let source, source.hasPrefix("@"), let line { definition = (String(source.dropFirst()), line) }
            entries[stage, default: []].append(RuleEntry(name: name, isAction: isAction, position: position,
                                                         definition: definition))
        }
        lua.pushReference(self.byStageReference)
        lua.pushValue(at: list)
        if case .failure(let error) = lua.protectedCall(arguments: 1, results: 1) {
            throw RuleLoadError(error.message)
        }
        var stageLists = PerStage<Int32>()
        for stage in entries.stages {
            lua.getField(stage.rawValue, table: -1)
            stageLists[stage] = lua.makeReference()
        }
        for reference in self.stageListReferences.allValues { lua.release(reference: reference) }
        self.stageListReferences = stageLists
        self.entries = entries
    }
}

extension RuleHost {
    /// The loaded entries, stage by stage in the order they run, with where each was made
    /// and where its function is defined.
    var definitions: [RuleDefinition] {
        self.entries.stages.flatMap { stage in
            (self.entries[stage] ?? []).map { entry in
                RuleDefinition(stage: stage, name: entry.name, isAction: entry.isAction,
                               position: String(entry.position.reversed().drop { $0 == " " || $0 == ":" }.reversed()),
                               function: entry.definition.map { RuleDefinition.FunctionPlace(path: $0.path, line: $0.line) })
            }
        }
    }
}
