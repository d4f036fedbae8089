-- The default policy's logic written in plain Lua against a table of DNS answers:
-- the comparison run for the engine benchmark. No sandbox, no coroutines, no host calls.
local answers, transactions = ...

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

local function is_loopback(ip) return ip == "::1" or ip:match("^127%.") ~= nil end
local function is_domain_name(name)
  if #name == 0 or #name > 253 or not name:find("%.") then return false end
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 then return false end
    if not label:match("^[%w-]+$") or label:sub(1, 1) == "-" or label:sub(-1) == "-" then return false end
  end
  return true
end

local function address(text)
  local local_part, domain = text:match("^(.*)@(.*)$")
  return { address = text, local_part = local_part, domain = domain:lower() }
end

local accepted = 0
for _ = 1, transactions do
  local ctx = { client = { ip = "192.0.2.10", port = 40000 }, server = { name = "mx.vrules.test" },
                vars = {}, helo = "mail.good.example", mail_from = address("alice@good.example") }
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
  local route = locate_mx(ctx.mail_from.domain)
  if route.kind == "null" or route.kind == "none" then error("bad sender") end
  -- rcpt
  ctx.stage = "rcpt"
  ctx.rcpt = address("bob@implicit.example")
  ctx.rcpts = { ctx.rcpt }
  local rroute = locate_mx(ctx.rcpt.domain)
  if rroute.kind == "null" then error("bad rcpt") end
  accepted = accepted + 1
end
return accepted
