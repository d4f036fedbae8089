import Lua
import Testing

/// The state's allocator keeps freed small blocks (up to 256 bytes) on free lists by size
/// class and hands them out again. What it must never do: hand out a block smaller than
/// asked for, lose contents when a block grows or shrinks across classes, or miscount bytes.
@Suite("Lua allocator")
struct AllocatorTests {
    /// Strings and tables of every small size, and across the 256-byte line, made, grown,
    /// shrunk, freed and made again many times; every value is checked after each round.
    static let churn = #"""
    local errors = {}
    local function check(ok, what) if not ok then errors[#errors + 1] = what end end
    for round = 1, 40 do
      local strings, tables = {}, {}
      for size = 1, 300 do
        strings[size] = string.rep(string.char(65 + (size + round) % 26), size)
        local t = {}
        for i = 1, size % 40 do t[i] = size * 1000 + i end
        for i = 1, size % 7 do t["k" .. i] = i end
        tables[size] = t
      end
      -- Grow some tables past their class, shrink others (the collector resizes them).
      for size = 1, 300, 3 do
        local t = tables[size]
        for i = #t + 1, #t + 50 do t[i] = size * 1000 + i end
      end
      for size = 2, 300, 3 do
        local t = tables[size]
        for i = 1, #t do t[i] = nil end
        t.k1 = nil
      end
      collectgarbage("collect")
      for size = 1, 300 do
        local s = strings[size]
        check(#s == size and s == string.rep(string.char(65 + (size + round) % 26), size), "string " .. size)
        local t = tables[size]
        if size % 3 == 1 then
          for i = 1, #t do check(t[i] == size * 1000 + i, "grown table " .. size) end
        elseif size % 3 == 0 then
          for i = 1, size % 40 do check(t[i] == size * 1000 + i, "table " .. size) end
          for i = 1, size % 7 do check(t["k" .. i] == i, "table key " .. size) end
        end
      end
      strings, tables = nil, nil
      collectgarbage("collect")
    end
    return #errors, table.concat(errors, ", ", 1, math.min(#errors, 20))
    """#

    @Test("blocks of every small size are reused with their contents whole, and every byte is counted back")
    func churn() throws {
        let lua = LuaState(memoryLimit: 0)
        guard case .success = lua.load(source: "collectgarbage('collect') return collectgarbage('count')", chunkName: "=before") else {
            Issue.record("does not compile")
            return
        }
        _ = lua.protectedCall(arguments: 0, results: 1)
        let before = lua.memoryUsed
        lua.pop()
        guard case .success = lua.load(source: Self.churn, chunkName: "=churn") else {
            Issue.record("the churn script does not compile")
            return
        }
        if case .failure(let error) = lua.protectedCall(arguments: 0, results: 2) {
            Issue.record("the churn script failed: \(error)")
            return
        }
        #expect(lua.integer(at: -2) == 0, "\(lua.string(at: -1) ?? "")")
        lua.pop(2)
        guard case .success = lua.load(source: "collectgarbage('collect')", chunkName: "=after") else { return }
        _ = lua.protectedCall(arguments: 0, results: 0)
        // The same live objects as before the churn, give or take the interned strings and
        // the chunks' own closures: nothing is counted twice or lost.
        #expect(abs(lua.memoryUsed - before) < 16_384, "\(before) bytes before, \(lua.memoryUsed) after")
    }
}
