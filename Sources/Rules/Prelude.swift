/// The Lua half of the rule API: verdicts, replies, rule/action entries, the sandbox's
/// globals and the read-only proxies. It runs once per state with the real standard
/// library and hands the host what it needs; scripts only ever see the sandbox.
/// Host functions (`host.*`) are C trampolines into `RuleHost`.
enum Prelude {
    static let chunkName = "=vrules"

    static let source = #"""
local host, state = ...
local error, type, tostring, select, pcall, rawget, rawset, rawequal, rawlen =
      error, type, tostring, select, pcall, rawget, rawset, rawequal, rawlen
local setmetatable, getmetatable, next, pairs, ipairs, ltype = setmetatable, getmetatable, next, pairs, ipairs, math.type
local format, match, find, concat, sort = string.format, string.match, string.find, table.concat, table.sort
local real_load = load
local lib = host.lib
local readonly, is_readonly, charge = lib.readonly, lib.is_readonly, lib.charge

-- The facts the host owns come from it: stages, named replies, the allow-list.
local STAGES = host.stages
local STAGE_SET = {}
for i, s in ipairs(STAGES) do STAGE_SET[s] = i end

-- Where the caller's caller is, as "path:line:" (no debug library needed).
local function position(level)
  local _, where = pcall(error, "", level + 3)
  return where
end

---------------------------------------------------------------- replies
local reply_data = setmetatable({}, { __mode = "k" })

-- Validation is the host's (one set of rules for scripts and the linter); a reply that
-- passes becomes a read-only object the host reads back when the rule decides.
local host_make_reply, host_parse_reply, host_check_reply = host.make_reply, host.parse_reply, host.check_reply

local function new_reply(code, enhanced, text)
  local data = { code = code, enhanced = enhanced, text = text }
  local r = readonly(data, "reply")
  reply_data[r] = data
  return r
end

local function make_reply(code, enhanced, text, level)
  local c, e, t = host_make_reply(code, enhanced, text)
  if not c then error(e, level + 1) end
  return new_reply(c, e, t)
end

local function to_reply(value, level)
  level = level + 1
  if reply_data[value] then return value end
  if type(value) == "string" then
    local c, e, t = host_parse_reply(value)
    if not c then error(e, level) end
    return new_reply(c, e, t)
  end
  error(format("expected a reply (reply(...), a \"CODE X.Y.Z text\" string or a replies constant), got %s", type(value)), level)
end

local function reply(code, enhanced, text) return make_reply(code, enhanced, text, 2) end

local replies = {}
for _, r in ipairs(host.replies) do replies[r.name] = new_reply(r.code, r.enhanced, r.text) end

---------------------------------------------------------------- verdicts
local verdict_data = setmetatable({}, { __mode = "k" })

local function make_verdict(kind, r)
  local data = { kind = kind, reply = r }
  local v = readonly(data, "verdict")
  verdict_data[v] = data
  return v
end

local NEXT = make_verdict("next", nil)
local ACCEPT = make_verdict("accept", nil)

local function verdict_with_reply(kind, r)
  r = to_reply(r, 3)
  local problem = host_check_reply(kind, reply_data[r].code)
  if problem then error(problem, 3) end
  return make_verdict(kind, r)
end

local function accept(r)
  if r == nil then return ACCEPT end
  return verdict_with_reply("accept", r)
end

local function defer(r)
  if r == nil then return make_verdict("defer", replies.directory_failure) end
  return verdict_with_reply("defer", r)
end

local function reject(r)
  if r == nil then return make_verdict("reject", replies.rdns_failed) end
  return verdict_with_reply("reject", r)
end

-- `next()` is the "no decision" verdict; called with a table it is Lua's own `next`.
local function next_verdict(t, k)
  if t ~= nil then return next(t, k) end
  return NEXT
end

---------------------------------------------------------------- rules
local entry_data = setmetatable({}, { __mode = "k" })

local function make_entry(kind)
  return function(name, fn)
    if type(name) ~= "string" or name == "" then
      error(format("%s(name, fn): name must be a non-empty string, got %s", kind, type(name)), 2)
    end
    if #name > \#(RuleNaming.maximumBytes) then
      error(format("%s(name, fn): %s", kind, \#(RuleNaming.tooLongLuaFormat)), 2)
    end
    if type(fn) ~= "function" then
      error(format("%s '%s': expected a function, got %s", kind, name, type(fn)), 2)
    end
    local e = readonly({ kind = kind, name = name }, kind)
    entry_data[e] = { kind = kind, name = name, fn = fn, where = position(1) }
    return e
  end
end

-- Validates a script's returned stage table and flattens it for the host. Every problem
-- is reported, not only the first (the linter shows them all): returns the entries and a
-- list of problems, in stage order.
local function compile(spec, path)
  if type(spec) ~= "table" then
    return {}, { format("%s: the script must return a table of stages, got %s", path, type(spec)) }
  end
  local out, problems = {}, {}
  local function problem(order, text) problems[#problems + 1] = { order = order, text = text } end
  for key, list in pairs(spec) do
    local order = STAGE_SET[key] or 0
    if type(key) ~= "string" or not STAGE_SET[key] then
      local hint = type(key) == "string" and host.suggest(key, STAGES)
      problem(order, format("%s: unknown stage '%s'%s (stages: %s)", path, tostring(key),
        hint and format(" (did you mean '%s'?)", hint) or "", concat(STAGES, ", ")))
    elseif type(list) ~= "table" then
      problem(order, format("%s: stage '%s' must be a list of rule(...) and action(...), got %s", path, key, type(list)))
    else
      local seen = {}
      local count = rawlen(list)
      for k in pairs(list) do
        if ltype(k) ~= "integer" or k < 1 or k > count then
          problem(order, format("%s: stage '%s' has a non-list key '%s'", path, key, tostring(k)))
        end
      end
      for i = 1, count do
        local e = entry_data[list[i]]
        if not e then
          problem(order, format("%s: stage '%s' entry %d is a %s, not a rule(...) or action(...)", path, key, i, type(list[i])))
        elseif seen[e.name] then
          problem(order, format("%sduplicate rule name '%s' in stage '%s'", e.where, e.name, key))
        else
          seen[e.name] = true
          local source, line = lib.defined(e.fn)
          out[#out + 1] = { stage = key, order = order, index = i, kind = e.kind, name = e.name, fn = e.fn, where = e.where,
                            source = source, line = line }
        end
      end
    end
  end
  sort(out, function(a, b) if a.order ~= b.order then return a.order < b.order end return a.index < b.index end)
  sort(problems, function(a, b) if a.order ~= b.order then return a.order < b.order end return a.text < b.text end)
  local texts = {}
  for i, p in ipairs(problems) do texts[i] = p.text end
  return out, texts
end

-- What the host needs of a rule's return value: kind, code, enhanced, text.
local function describe(value, entry_kind, name, where)
  if value == nil then return "next" end
  local v = verdict_data[value]
  if not v then
    error(format("%s%s '%s' returned a %s; return a verdict (accept(), reject(), defer(), next()) or nothing",
      where, entry_kind, name, type(value)), 0)
  end
  if entry_kind == "action" and v.kind ~= "next" then
    error(format("%saction '%s' returned %s(): actions cannot decide, use rule(...) instead", where, name, v.kind), 0)
  end
  local r = v.reply and reply_data[v.reply]
  if r then return v.kind, r.code, r.enhanced, r.text end
  return v.kind
end

-- Runs one stage's entries in order inside the evaluation's coroutine: one resume per
-- stage, not per rule. Returns the deciding entry's index (0 when none decided), the
-- verdict kind and its reply. `cursor[1]` (one table per stage thread) tells the host
-- which entry is running, for log lines and failures.
local host_trace_rule = host.trace_rule
local function run_stage(list, ctx, tracing, cursor)
  for i = 1, #list do
    local e = list[i]
    cursor[1] = i
    local kind, code, enhanced, text = describe(e.fn(ctx), e.kind, e.name, e.where)
    if tracing then host_trace_rule(i, kind, code, enhanced, text) end
    if kind ~= "next" then return i, kind, code, enhanced, text end
  end
  return 0, "next"
end

-- The compiled entries grouped by stage, for run_stage.
local function by_stage(out)
  local stages = {}
  for _, e in ipairs(out) do
    local list = stages[e.stage]
    if not list then list = {} stages[e.stage] = list end
    list[#list + 1] = e
  end
  return stages
end

---------------------------------------------------------------- log, dns errors
local function log_function(level)
  return function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    host.log(level, concat(parts, " "))
  end
end

local dns_error_mt = {
  __metatable = "dns error",
  __tostring = function(e)
    local text = format("DNS %s for %s/%s", tostring(rawget(e, "kind")), tostring(rawget(e, "name")), tostring(rawget(e, "type")))
    -- A bogus answer's reason is what an operator acts on ("RRSIG expired ..."): reports show it.
    local detail = rawget(e, "detail")
    if rawget(e, "kind") == "bogus" and type(detail) == "string" then text = text .. ": " .. detail end
    return text
  end,
}

---------------------------------------------------------------- sandbox
local G = {}
local ENV = {}

-- What scripts may use is the host's allow-list (HostAPI); the functions below that wrap
-- Lua's own (setmetatable, rawset, load, collectgarbage) replace the plain ones.
local allow = host.allow
for _, n in ipairs(allow.base) do if n ~= "_G" then G[n] = _G[n] end end
local function is_host_table(t) return is_readonly(t) or rawequal(t, ENV) or rawequal(t, G) end

G.setmetatable = function(t, mt)
  if is_host_table(t) then error("cannot change the metatable of a read-only table", 2) end
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then error("__gc metamethods are not allowed in rules", 2) end
  return setmetatable(t, mt)
end
G.rawset = function(t, k, v)
  if is_host_table(t) then error("cannot modify a read-only table", 2) end
  return rawset(t, k, v)
end
G.load = function(chunk, chunkname, mode, env)
  if type(chunk) ~= "string" then error("load() accepts only a text chunk given as a string", 2) end
  charge(#chunk // 4)
  return real_load(chunk, chunkname or "=(load)", "t", ENV)
end
G.collectgarbage = function(opt)
  if opt == nil or opt == "count" then return collectgarbage("count") end
  error("collectgarbage() only supports \"count\" in rules", 2)
end

-- Pattern matching, rep and the table functions that walk many elements come from the
-- shim, which charges their work to the stage budget.
local function library(name, real, charged)
  local t = {}
  for _, n in ipairs(allow[name]) do t[n] = (charged and charged[n]) or real[n] end
  return t
end
local string_lib = library("string", string, lib.string)
G.string = readonly(string_lib, "library 'string'")
G.table = readonly(library("table", table, lib.table), "library 'table'")
G.math = readonly(library("math", math), "library 'math'")
G.utf8 = readonly(library("utf8", utf8), "library 'utf8'")
G.os = readonly(library("os", os), "library 'os'")
-- The shared string metatable would let one transaction change string methods for all.
getmetatable("").__index = string_lib
getmetatable("").__metatable = false

G.rule = make_entry("rule")
G.action = make_entry("action")
G.accept = accept
G.defer = defer
G.reject = reject
G.next = next_verdict
G.reply = reply
G.replies = readonly(replies, "table 'replies'")
G.dns = readonly({
  lookup = host.dns_lookup, rlookup = host.dns_rlookup, locate_mx = host.dns_locate_mx,
  iprev = host.dns_iprev, query = host.dns_query, dnsbl = host.dns_dnsbl,
}, "library 'dns'")
-- SPF (RFC 7208): check_host() for any identity, and the session's own identity: MAIL FROM,
-- or HELO for the null reverse-path (RFC 7208 §2.4). Never raises for DNS trouble.
local host_spf = host.spf_check_host
local function spf_check_host(ip, domain, sender, helo)
  return host_spf(ip, domain, sender, helo, "mailfrom")
end
local function spf_check(ctx)
  local from, helo = ctx.mail_from, ctx.helo
  -- At connect there is no identity yet: a result of "none" would hide that the check can
  -- never find anything there.
  if from == nil and helo == nil then
    error("spf.check(ctx): nothing to check yet (no HELO name, no MAIL FROM): call it at helo or later", 2)
  end
  local receiver = ctx.server and ctx.server.name
  if from == nil or from.address == "" then
    return host_spf(ctx.client.ip, helo or "", "postmaster@" .. (helo or ""), helo, "helo", receiver)
  end
  return host_spf(ctx.client.ip, from.domain, from.address, helo, "mailfrom", receiver)
end
-- A header value's token: as is when it is a plain token (RFC 5322 atext and dots),
-- else a quoted-string with quotes and backslashes escaped; a comment's text without
-- parentheses and backslashes. In C: every accepted message's two headers go through them.
-- The two header values are built in C (lib): every accepted message gets them.
local spf_received_header = lib.spf_received_header

G.spf = readonly({ check_host = spf_check_host, check = spf_check, received_header = spf_received_header },
  "library 'spf'")

-- RFC 8601: an Authentication-Results value for this server (ctx.server.name is the
-- authserv-id) from iprev and SPF results, given as result tables or status strings.
G.authres = lib.authres
G.log = readonly({ debug = log_function("debug"), info = log_function("info"),
  warn = log_function("warn"), error = log_function("error") }, "library 'log'")

local loaded = {}
-- The modules each coroutine is loading, outermost first: a module required again while it
-- loads is a cycle, named as one (it recursed until the memory cap, reported as "memory limit
-- exceeded"). Per coroutine: transactions that require the same module from a rule while it
-- waits for DNS in another are not a cycle.
local running = lib.running
local loading = setmetatable({}, { __mode = "k" })
G.require = function(name)
  if type(name) ~= "string" then error(format("require: module name must be a string, got %s", type(name)), 2) end
  local cached = loaded[name]
  if cached ~= nil then return cached end
  local thread = running()
  local chain = loading[thread] or {}
  for i = 1, #chain do
    if chain[i] == name then
      local cycle = {}
      for j = i, #chain do cycle[#cycle + 1] = chain[j] end
      cycle[#cycle + 1] = name
      error(format("require: '%s' is required while it loads (%s)", name, concat(cycle, " -> ")), 2)
    end
  end
  local source, path = host.read_module(name)
  local fn, err = real_load(source, "@" .. path, "t", ENV)
  if not fn then error(err, 0) end
  chain[#chain + 1] = name
  loading[thread] = chain
  local ok, value = pcall(fn, name)
  chain[#chain] = nil
  if not ok then error(value, 0) end
  if value == nil then value = true end
  loaded[name] = value
  return value
end

G._G = ENV
setmetatable(G, {
  __index = function(_, k) error(format("undefined global '%s'", tostring(k)), 2) end,
  __metatable = false,
})
setmetatable(ENV, {
  __index = G,
  __newindex = function(_, k, v)
    if state.loading then rawset(G, k, v) return end
    error(format("attempt to assign to global '%s': globals are read-only while rules run (use ctx.vars or a local)",
      tostring(k)), 2)
  end,
  __metatable = false,
})

return {
  add_header = function(name, value) return host.add_header(name, value) end,
  env = ENV,
  globals = G,
  compile = compile,
  run_stage = run_stage,
  by_stage = by_stage,
  dns_error_mt = dns_error_mt,
  stages = STAGES,
}
"""#
}
