-- expect: 10:5: warning: rule 'shadowed' never runs: rule 'anyone' (line 9) returns accept() every time the connect stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 11:5: warning: action 'never logged' never runs: rule 'anyone' (line 9) returns accept() every time the connect stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 14:5: error: action 'wrong' returns reject() every time: an action's verdict is an error, so the helo stage defers (451 4.3.0) every time (make it a rule) [action-verdict]
-- expect: 15:5: warning: rule 'after the action' never runs: action 'wrong' (line 14) ends the helo stage in an error every time [unreachable-entry]
-- expect: 22:5: warning: rule 'behind it' never runs: rule 'logs then accepts' (line 18) returns accept() every time the mail stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
return {
  connect = {
    rule("trusted", function(ctx) if ctx.client.ip == "127.0.0.1" then return accept() end end),
    rule("anyone", function(ctx) return accept() end),
    rule("shadowed", function(ctx) return reject() end),
    action("never logged", function(ctx) log.info("x") end),
  },
  helo = {
    action("wrong", function(ctx) return reject(reply(550, "5.7.1", "no")) end),
    rule("after the action", function(ctx) end),
  },
  mail = {
    rule("logs then accepts", function(ctx)
      log.info("mail from " .. ctx.mail_from.address)
      return accept()
    end),
    rule("behind it", function(ctx) end),
  },
  rcpt = {
    rule("loop then decide", function(ctx)
      for _, r in ipairs(ctx.rcpts) do log.info(r.address) end
      return accept()
    end),
    rule("still runs: the loop is a branch", function(ctx) end),
    rule("returns a value of its own", function(ctx) local v = accept() return v end),
    rule("last and catch-all", function(ctx) return defer() end),
  },
  -- Two functions start on one line: which is an entry's cannot be told, so nothing is said.
  data = { rule("d", function(ctx) return accept() end) }, preq = { rule("p1", function(ctx) end),
    rule("p2", function(ctx) end) },
}
