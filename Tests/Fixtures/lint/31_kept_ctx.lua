-- expect: 14:3: warning: 'kept' gains an entry for each ctx.client.ip and no code here removes one: it grows with the traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty (remove old entries: set them to nil) [growing-table]
-- expect: 14:3: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 18:5: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 19:5: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 20:18: warning: 'history' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 21:5: warning: 'state' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 23:5: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 24:18: warning: 'history' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 27:5: warning: 'state' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
local kept = { list = {} }
local history = {}
state = {}
local function remember(ctx)
  kept[ctx.client.ip] = ctx
end
return {
  connect = { rule("keep", function(ctx)
    kept.ctx = ctx
    kept.list[1] = ctx
    table.insert(history, ctx)
    state.last = ctx
    remember(ctx)
    kept[ctx.client.ip] = { ctx = ctx, at = os.time() }
    table.insert(history, { ctx })
    local entry = {}
    entry.ctx = ctx
    state.entry = entry
    -- Not kept: a table of the rule's own, and copies of fields.
    local mine = { ctx = ctx }
    mine.again = ctx
    kept.ip = ctx.client.ip
    history[#history + 1] = ctx.mail_from
  end) },
  helo = { rule("another ctx", function(ctx)
    ctx = { helo = "x" }
    kept.other = ctx
  end) },
}
