import Lua
import Testing

/// The sandbox's pattern functions keep Lua 5.4's semantics: each case is run through Lua's
/// own `string` function and through the sandbox's, in one state, and the results (or the
/// error messages, without their position) must be equal.
@Suite("Pattern matching keeps Lua's semantics")
struct PatternConformanceTests {
    /// Runs `check(original, sandboxed, ...)` over a corpus and random cases; returns the
    /// disagreements, one line each.
    static let harness = #"""
    local sandbox = ...
    local real = { find = string.find, match = string.match, gmatch = string.gmatch, gsub = string.gsub, rep = string.rep }
    local failures, cases = {}, 0
    local function pack(ok, ...)
      -- Errors compare without their position, and without the function's name, which Lua
      -- finds in package.loaded for its own functions only.
      if not ok then
        local message = string.gsub(tostring((...)), "^[^:]*:%d+: ", "")
        return { "error", (string.gsub(message, "to '[^']*'", "to 'f'")) }
      end
      return { n = select("#", ...), ... }
    end
    local function same(a, b)
      if #a ~= #b or a.n ~= b.n then return false end
      for i = 1, math.max(#a, a.n or 0) do if a[i] ~= b[i] then return false end end
      return true
    end
    local function show(t)
      local parts = {}
      for i = 1, math.max(#t, t.n or 0) do parts[#parts + 1] = string.format("%q", tostring(t[i])) end
      return "{" .. table.concat(parts, ", ") .. "}"
    end
    local function compare(label, f, g, ...)
      cases = cases + 1
      local a, b = pack(pcall(f, ...)), pack(pcall(g, ...))
      if not same(a, b) then
        local args = {}
        for i = 1, select("#", ...) do args[i] = string.format("%q", tostring((select(i, ...)))) end
        failures[#failures + 1] = label .. "(" .. table.concat(args, ", ") .. "): lua " .. show(a) .. " vrules " .. show(b)
      end
    end
    local function all_matches(gmatch)
      return function(s, p, init)
        local out = {}
        for a, b, c in gmatch(s, p, init) do out[#out + 1] = tostring(a) .. "|" .. tostring(b) .. "|" .. tostring(c) end
        return table.concat(out, ";")
      end
    end
    local function check(s, p, init)
      compare("find", real.find, sandbox.find, s, p, init)
      compare("match", real.match, sandbox.match, s, p, init)
      compare("gmatch", all_matches(real.gmatch), all_matches(sandbox.gmatch), s, p, init)
      compare("gsub", real.gsub, sandbox.gsub, s, p, "<%0>")
      compare("gsub1", real.gsub, sandbox.gsub, s, p, "%1-%%", 2)
      compare("gsubf", real.gsub, sandbox.gsub, s, p, function(a, b) return b and (a .. "+" .. b) or nil end)
      compare("gsubt", real.gsub, sandbox.gsub, s, p, { a = "A", [""] = "E", ["1"] = false })
    end
    local corpus = {
      { "hello world", "o", 1 }, { "hello world", "o", -3 }, { "hello world", "l+" }, { "hello world", "^h" },
      { "hello world", "d$" }, { "hello world", "(%w+) (%w+)" }, { "hello", "()ll()" }, { "THE (quick) fox", "%((%a+)%)" },
      { "f(a(b)c)d", "%b()" }, { "THE (quick) fox", "%f[%a]%a+" }, { "aaa", "a-b" }, { "aaab", "a-b" },
      { "abc", "" }, { "", "" }, { "", "a*" }, { "abc", "", 10 }, { "abc", "b", 0 }, { "abc", "b", -100 },
      { "a.b", ".", 1 }, { "a.b", "%.", 1 }, { "a+b", "+" }, { "x", "[" }, { "x", "[a" }, { "x", "%" }, { "x", "(x" },
      { "x", "x)" }, { "x", "%1" }, { "xx", "(x)%1" }, { "xy", "(x)%2" }, { "abc", "%f" }, { "abc", "%bx" },
      { "key = value", "(%w+)%s*=%s*(%w+)" }, { "2024-11-28", "(%d+)-(%d+)-(%d+)" }, { "a,b,,c", "([^,]*)" },
      { "  trim  ", "^%s*(.-)%s*$" }, { "alice@example.com", "^([^@]+)@(.+)$" }, { "[x]", "[]]" }, { "a-z", "[a%-z]+" },
      { "\0a\0", "%z" }, { "\0a\0", "[%z]" }, { "a\0b", "a\0b" }, { "ab", "[^%a]" }, { "AbC", "%u%l%u" },
      { "x=1, y=2", "(%w+)=(%w+)" }, { "abc", "((a)(b))" }, { "abc", "()a()b()c()" }, { "hello", "(h)(e)(l)(l)(o)" },
      { "192.0.2.10", "^(%d+)%.(%d+)%.(%d+)%.(%d+)$" }, { "mail.example.", "%.$" }, { "abab", "(ab)%1" },
    }
    for _, c in ipairs(corpus) do check(c[1], c[2], c[3]) end
    compare("find plain", real.find, sandbox.find, "a.b*c", ".b*", 1, true)
    compare("find plain", real.find, sandbox.find, "a.b*c", "", 4, true)
    compare("find plain", real.find, sandbox.find, "aaab", "aab", 1, true)
    compare("find plain", real.find, sandbox.find, "a\0b", "\0", 1, true)
    compare("rep", real.rep, sandbox.rep, "ab", 3)
    compare("rep", real.rep, sandbox.rep, "ab", 3, ", ")
    compare("rep", real.rep, sandbox.rep, "ab", 0)
    compare("rep", real.rep, sandbox.rep, "ab", -1, "x")
    compare("rep", real.rep, sandbox.rep, "", 5, "")
    compare("rep", real.rep, sandbox.rep, "x", 1, "sep")
    compare("rep", real.rep, sandbox.rep, "x", 1 << 40)
    compare("gsub max", real.gsub, sandbox.gsub, "aaaa", "a", "b", 2)
    compare("gsub bad", real.gsub, sandbox.gsub, "abc", "b", "%9")
    compare("gsub bad", real.gsub, sandbox.gsub, "abc", "b", "%x")
    compare("gsub bad", real.gsub, sandbox.gsub, "abc", "(b)", function() return {} end)
    compare("gsub bad", real.gsub, sandbox.gsub, "abc", "b", true)
    compare("gsub anchored", real.gsub, sandbox.gsub, "aaa", "^a", "b")
    compare("gsub pos", real.gsub, sandbox.gsub, "abc", "()", "%1")
    compare("captures", real.match, sandbox.match, string.rep("a", 40), string.rep("(a)", 33))
    compare("depth", real.match, sandbox.match, string.rep("a", 300), string.rep("a?", 250))

    -- Random patterns over a small alphabet, small enough for Lua's own matcher to finish.
    local atoms = { "a", "b", ".", "%a", "%A", "[ab]", "[^a]", "[a-c]", "%d", "x", "%%", "%b()", "%f[%a]", "()", "$", "^" }
    local quantifiers = { "", "", "", "*", "+", "-", "?" }
    local subjects = { "", "a", "ab", "aab", "abba", "b(a)b", "a1b2", "xx", "%a%", "(ab)(c)", "aaaa", "ba(b)a" }
    math.randomseed(7208)
    for _ = 1, 4000 do
      local parts = {}
      for _ = 1, math.random(1, 5) do
        local atom = atoms[math.random(#atoms)]
        if math.random() < 0.15 then atom = "(" .. atom .. ")" end
        parts[#parts + 1] = atom .. quantifiers[math.random(#quantifiers)]
      end
      if math.random() < 0.2 then parts[#parts + 1] = "%1" end
      check(subjects[math.random(#subjects)], table.concat(parts), math.random(-3, 5))
    end
    return cases, table.concat(failures, "\n")
    """#

    @Test("find, match, gmatch, gsub and rep agree with Lua's own on a corpus and 4,000 random patterns")
    func agreesWithLua() throws {
        let lua = LuaState(memoryLimit: 0)
        guard case .success = lua.load(source: Self.harness, chunkName: "=conformance") else {
            Issue.record("the harness does not compile")
            return
        }
        #expect(lua.pushSandboxLibrary())
        lua.getField("string", table: -1)
        lua.insert(at: -2)
        lua.pop()
        let ran = lua.protectedCall(arguments: 1, results: 2)
        if case .failure(let error) = ran {
            Issue.record("the harness failed: \(error)")
            return
        }
        let cases = lua.integer(at: -2) ?? 0
        let failures = lua.string(at: -1) ?? "?"
        print("pattern conformance: \(cases) cases compared")
        #expect(cases > 28_000)
        #expect(failures.isEmpty, "\(failures.prefix(4000))")
    }
}
