-- expect: 11:5: warning: 'seen' gains an entry for each ctx.client.ip and no code here removes one: it grows with the traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty (remove old entries: set them to nil) [growing-table]
-- expect: 12:5: warning: 'counts' gains an entry for each ctx.client.ip and no code here removes one: it grows with the traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty (remove old entries: set them to nil) [growing-table]
-- expect: 17:5: warning: 'stats' gains an entry for each ctx.mail_from.domain and no code here removes one: it grows with the traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty (remove old entries: set them to nil) [growing-table]
local seen = {}
local counts = {}
local recent = {}
local stats = { by_domain = {} }
local cleared = {}
return {
  connect = { rule("remember", function(ctx)
    seen[ctx.client.ip] = os.time()
    counts[ctx.client.ip] = (counts[ctx.client.ip] or 0) + 1
    recent[ctx.client.ip] = true
    cleared[ctx.client.ip] = true
  end) },
  mail = { rule("domains", function(ctx)
    stats.by_domain[ctx.mail_from.domain] = true
    local mine = {}
    mine[ctx.client.ip] = true
    counts.total = (counts.total or 0) + 1
  end) },
  helo = { rule("expire", function(ctx)
    recent[ctx.client.ip] = nil
    for k in pairs(cleared) do cleared[k] = nil end
  end) },
}
