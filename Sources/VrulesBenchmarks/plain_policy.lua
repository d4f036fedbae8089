-- The default policy's logic written in plain Lua against a table of DNS answers:
-- the comparison run for the engine benchmark. No sandbox, no coroutines, no host calls.
-- What the engine does in Swift (DNS lookups, SPF's record lookup and selection) is done
-- here in Lua over the table; what the engine's prelude does in Lua (the two headers) is
-- the same code.
local answers, transactions = ...
local find, format, concat = string.find, string.format, table.concat

local function query(name, rtype)
  local records = answers[name .. "/" .. rtype]
  if records then return records, (#records > 0) and "ok" or "nodata" end
  return {}, "nxdomain"
end

local function reverse_name(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return d .. "." .. c .. "." .. b .. "." .. a .. ".in-addr.arpa"
end

local function iprev(ip)
  local names, outcome = query(reverse_name(ip), "PTR")
  if outcome ~= "ok" then return { status = "permerror" } end
  for i = 1, math.min(#names, 10) do
    local addresses = query(names[i], "A")
    for _, address in ipairs(addresses) do
      if address == ip then return { status = "pass", name = names[i] } end
    end
  end
  return { status = "fail" }
end

local function locate_mx(domain)
  local mx, outcome = query(domain, "MX")
  if outcome == "nxdomain" then return { kind = "none" } end
  if #mx == 1 and mx[1].preference == 0 and mx[1].exchange == "" then return { kind = "null" } end
  if #mx == 0 then
    local a = query(domain, "A")
    if #a > 0 then return { kind = "implicit", { host = domain, preference = 0 } } end
    return { kind = "none" }
  end
  local route = { kind = "mx" }
  for i, r in ipairs(mx) do route[i] = { host = r.exchange, preference = r.preference, key = math.random() } end
  table.sort(route, function(x, y)
    if x.preference ~= y.preference then return x.preference < y.preference end
    return x.key < y.key
  end)
  return route
end

-- RFC 7208 §4.5 record selection (the benchmarked sender publishes none: result "none").
local function spf_check(ip, domain, sender, helo, receiver)
  local texts, outcome = query(domain, "TXT")
  local result = { client_ip = ip, envelope_from = sender, helo = helo, receiver = receiver,
                   domain = domain, identity = "mailfrom" }
  if outcome == "nxdomain" then result.result = "none" return result end
  local records = {}
  for _, text in ipairs(texts) do
    if text == "v=spf1" or text:sub(1, 7) == "v=spf1 " then records[#records + 1] = text end
  end
  if #records == 0 then result.result = "none" return result end
  if #records > 1 then result.result = "permerror" return result end
  error("the benchmark's sender publishes no SPF record")
end

local function is_dot_atom(text)
  return text ~= "" and not find(text, "[^%w!#$%%&'*+/=?^_`{|}~.-]") and not find(text, "^%.")
    and not find(text, "%.$") and not find(text, "..", 1, true)
end

local function quoted(text)
  return '"' .. text:gsub('[\\"]', "\\%0") .. '"'
end

-- Received-SPF's values: a dot-atom, else quoted (RFC 7208 9.1).
local function header_token(text)
  text = tostring(text)
  if is_dot_atom(text) then return text end
  return quoted(text)
end

-- Authentication-Results' values: a MIME token or local-part@domain-name, else quoted (RFC 8601 2.2).
local function pvalue_token(text)
  text = tostring(text)
  if text ~= "" and not find(text, '[%c ()<>@,;:\\"/%[%]?=\128-\255]') then return text end
  local localpart, domain = text:match("^([^@]*)@([^@]+)$")
  if localpart and (localpart == "" or is_dot_atom(localpart)) and not find(domain, "[^%w.-]") and is_dot_atom(domain) then
    return text
  end
  return quoted(text)
end

local function spf_received_header(r)
  local parts = {
    "client-ip=" .. header_token(r.client_ip),
    "envelope-from=" .. header_token(r.envelope_from or ""),
  }
  if r.helo then parts[#parts + 1] = "helo=" .. header_token(r.helo) end
  if r.receiver then parts[#parts + 1] = "receiver=" .. header_token(r.receiver) end
  parts[#parts + 1] = "identity=" .. header_token(r.identity or "mailfrom")
  if r.mechanism then parts[#parts + 1] = "mechanism=" .. header_token(r.mechanism) end
  local comment = format("%s: domain of %s %s %s as permitted sender", tostring(r.receiver or "vrules"),
    tostring(r.domain), r.result == "pass" and "designates" or "does not designate", tostring(r.client_ip))
  comment = comment:gsub("[()\\]", "")
  return r.result .. " (" .. comment .. ") " .. concat(parts, "; ")
end

local function authres(ctx, results)
  local id = (ctx.server and ctx.server.name) or "localhost"
  local methods = {}
  local iprev = results.iprev
  if iprev ~= nil then
    methods[#methods + 1] = format("iprev=%s policy.iprev=%s", tostring(iprev), pvalue_token(ctx.client.ip))
  end
  local s = results.spf
  if s ~= nil then
    methods[#methods + 1] = format("spf=%s smtp.mailfrom=%s", tostring(s), pvalue_token(ctx.mail_from.address))
  end
  return pvalue_token(id) .. "; " .. concat(methods, "; ")
end

-- ctx.add_header: printable text only, each header once per message.
local function add_header(ctx, name, value)
  if find(name, "[^!-9;-~]") or find(value, "[%c]") then error("bad header") end
  for _, h in ipairs(ctx.headers) do
    if h.name == name and h.value == value then return end
  end
  ctx.headers[#ctx.headers + 1] = { name = name, value = value }
end

local function is_loopback(ip) return ip == "::1" or ip:match("^127%.") ~= nil end
local function is_domain_name(name)
  if #name == 0 or #name > 253 or not name:find("%.") then return false end
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 then return false end
    if not label:match("^[%w-]+$") or label:sub(1, 1) == "-" or label:sub(-1) == "-" then return false end
  end
  return true
end

local function is_address_literal(name) return name:match("^%[.+%]$") ~= nil end

local function address(text)
  local local_part, domain = text:match("^(.*)@(.*)$")
  return { address = text, local_part = local_part, domain = domain:lower() }
end

local accepted = 0
for _ = 1, transactions do
  local ctx = { client = { ip = "192.0.2.10", port = 40000 }, server = { name = "mx.vrules.test" },
                vars = {}, helo = "mail.good.example", mail_from = address("alice@good.example"), headers = {} }
  -- connect
  if is_loopback(ctx.client.ip) then ctx.vars.trusted = true end
  local r = iprev(ctx.client.ip)
  ctx.vars.iprev = r.status
  if r.status ~= "pass" then error("unexpected iprev " .. r.status) end
  -- helo
  ctx.stage = "helo"
  local name = ctx.helo
  if not is_domain_name(name) then error("bad helo") end
  local lower = name:lower()
  if lower == "localhost" or lower == ctx.server.name then error("bad helo") end
  -- mail
  ctx.stage = "mail"
  local domain = ctx.mail_from.domain
  if ctx.mail_from.address == "" or domain == "" or is_address_literal(domain) then error("bad sender") end
  local ok, route = pcall(locate_mx, domain)
  if not ok then error(route, 0) end
  if route.kind == "null" or route.kind == "none" then error("bad sender") end
  local spf = spf_check(ctx.client.ip, ctx.mail_from.domain, ctx.mail_from.address, ctx.helo, ctx.server.name)
  ctx.vars.spf = spf.result
  if spf.result == "fail" or spf.result == "temperror" then error("bad spf") end
  add_header(ctx, "Received-SPF", spf_received_header(spf))
  -- rcpt
  ctx.stage = "rcpt"
  ctx.rcpt = address("bob@implicit.example")
  ctx.rcpts = { ctx.rcpt }
  local rdomain = ctx.rcpt.domain
  if rdomain == "" or is_address_literal(rdomain) then error("bad rcpt") end
  local rok, rroute = pcall(locate_mx, rdomain)
  if not rok then error(rroute, 0) end
  if rroute.kind == "null" then error("bad rcpt") end
  add_header(ctx, "Authentication-Results", authres(ctx, { iprev = ctx.vars.iprev, spf = ctx.vars.spf }))
  if #ctx.headers ~= 2 then error("expected two headers") end
  accepted = accepted + 1
end
return accepted
