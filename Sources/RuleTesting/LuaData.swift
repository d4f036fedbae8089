import Lua

/// A Lua value copied out of a state as plain data: what a test file declares.
public indirect enum LuaData: Hashable, Sendable {
    case string(String)
    case number(Double)
    case boolean(Bool)
    case table(array: [LuaData], fields: [String: LuaData])
    /// Functions, userdata and other values a test file has no business declaring.
    case other(String)

    var typeName: String {
        switch self {
        case .string: return "string"
        case .number: return "number"
        case .boolean: return "boolean"
        case .table: return "table"
        case .other(let name): return name
        }
    }

    subscript(field: String) -> LuaData? {
        if case .table(_, let fields) = self { return fields[field] }
        return nil
    }

    /// The most values `read` takes in all, unless told otherwise.
    static let valueLimit = 100_000

    /// Reads the value at `index` with raw access only (no metamethods run), up to `depth`
    /// levels and `limit` values in all; a table inside itself reads as a cycle.
    static func read(_ lua: LuaState, at index: Int32, depth: Int = 16, limit: Int = Self.valueLimit) -> LuaData {
        Self.readCounting(lua, at: index, depth: depth, limit: limit).data
    }

    /// `read`, and whether every value was read: false when `limit` cut the reading short,
    /// so that a caller can name the limit instead of the first value it left out.
    static func readCounting(_ lua: LuaState, at index: Int32, depth: Int = 16,
                             limit: Int = Self.valueLimit) -> (data: LuaData, complete: Bool) {
        var reader = Reader(lua: lua, remaining: limit)
        let data = reader.read(at: index, depth: depth)
        return (data, !reader.cut)
    }

    private struct Reader {
        let lua: LuaState
        var remaining: Int
        /// Whether a value was left out because `remaining` ran out.
        var cut = false
        /// The tables on the path from the root to the value being read.
        var path: Set<UnsafeRawPointer> = []

        mutating func read(at index: Int32, depth: Int) -> LuaData {
            let lua = self.lua
            let index = lua.absoluteIndex(index)
            guard self.remaining > 0 else {
                self.cut = true
                return .other("too much data")
            }
            self.remaining -= 1
            switch lua.type(at: index) {
            case .string: return .string(lua.string(at: index) ?? "")
            case .number: return .number(lua.number(at: index))
            case .boolean: return .boolean(lua.boolean(at: index))
            case .table:
                guard depth > 0 else { return .other("table nested too deeply") }
                guard let identity = lua.pointer(at: index), !self.path.contains(identity) else {
                    return .other("table seen before (a cycle or a shared table)")
                }
                guard lua.reserve(4) else { return .other("table nested too deeply") }
                self.path.insert(identity)
                defer { self.path.remove(identity) }
                var array: [LuaData] = []
                var fields: [String: LuaData] = [:]
                let count = lua.rawLength(at: index)
                if count > 0 {
                    for position in 1...count {
                        lua.getIndex(position, table: index)
                        array.append(self.read(at: -1, depth: depth - 1))
                        lua.pop()
                    }
                }
                lua.forEachPair(table: index) {
                    if lua.type(at: -2) == .string, let key = lua.string(at: -2) {
                        fields[key] = self.read(at: -1, depth: depth - 1)
                    }
                }
                return .table(array: array, fields: fields)
            case .nil, .none: return .other("nil")
            case .function: return .other("function")
            default: return .other("userdata")
            }
        }
    }
}
