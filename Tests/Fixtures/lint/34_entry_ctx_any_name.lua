-- expect: 14:7: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- expect: 15:7: warning: 'seen' gains an entry for each ctx.client.ip and no code here removes one: it grows with the traffic until the Lua state's memory is full, when the engines are loaded again and it starts empty (remove old entries: set them to nil) [growing-table]
-- expect: 18:50: warning: 'kept' keeps a transaction's ctx: a ctx read after its transaction ended raises an error (copy the fields a later transaction needs) [kept-ctx]
-- A rule's function gets the transaction's ctx as its first parameter, whatever its name.
local kept = {}
local seen = {}
local function helper(c)
  -- Not known to be a ctx: a helper's parameter is only taken for one when named ctx.
  kept.helper = c
end
return {
  connect = {
    rule("short name", function(c)
      kept.last = c
      seen[c.client.ip] = true
      helper(c)
    end),
    action("named tx", function(tx) table.insert(kept, tx) end),
    rule("no parameter", function() kept.none = true end),
    rule("second parameter", function(c, extra) kept.extra = extra end),
  },
}
