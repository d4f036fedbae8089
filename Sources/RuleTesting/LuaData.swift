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

    /// Reads the value at `index` with raw access only (no metamethods run), up to `depth` levels.
    static func read(_ lua: LuaState, at index: Int32, depth: Int = 16) -> LuaData {
        let index = lua.absoluteIndex(index)
        switch lua.type(at: index) {
        case .string: return .string(lua.string(at: index) ?? "")
        case .number: return .number(lua.number(at: index))
        case .boolean: return .boolean(lua.boolean(at: index))
        case .table:
            guard depth > 0 else { return .other("table nested too deeply") }
            var array: [LuaData] = []
            var fields: [String: LuaData] = [:]
            let count = lua.rawLength(at: index)
            if count > 0 {
                for position in 1...count {
                    lua.getIndex(position, table: index)
                    array.append(Self.read(lua, at: -1, depth: depth - 1))
                    lua.pop()
                }
            }
            lua.forEachPair(table: index) {
                if lua.type(at: -2) == .string, let key = lua.string(at: -2) {
                    fields[key] = Self.read(lua, at: -1, depth: depth - 1)
                }
            }
            return .table(array: array, fields: fields)
        case .nil, .none: return .other("nil")
        case .function: return .other("function")
        default: return .other("userdata")
        }
    }
}
