-- expect: 9:45: warning: reject(...) makes a verdict and drops it: nothing is decided and the rule goes on; write 'return reject(...)' [verdict-dropped]
-- expect: 20:39: warning: defer(...) makes a verdict and drops it: nothing is decided and the rule goes on; write 'return defer(...)' [verdict-dropped]
-- A verdict called as a statement is made and dropped: the rule goes on as if it had not
-- been written. Returned, kept in a local, or passed on, it is not dropped.
local function refuse(verdict) return verdict end
return {
  connect = {
    rule("statement", function(ctx)
      if ctx.client.ip == "192.0.2.66" then reject("550 5.7.1 go away") end
    end),
    rule("kept", function(ctx)
      local verdict = defer()
      if ctx.client.ip == "192.0.2.67" then return verdict end
      if ctx.client.ip == "192.0.2.68" then return refuse(reject()) end
      if ctx.client.ip == "192.0.2.69" then return accept() end
    end),
  },
  helo = {
    action("dropped in an action", function(ctx)
      if ctx.helo == "localhost" then defer() end
    end),
  },
}
