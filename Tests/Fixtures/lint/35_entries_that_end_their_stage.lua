-- expect: 12:5: warning: rule 'shadowed' never runs: rule 'anyone' (line 11) returns accept() every time the connect stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 13:5: warning: action 'never logged' never runs: rule 'anyone' (line 11) returns accept() every time the connect stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 16:5: error: action 'wrong' returns reject() every time: an action's verdict is an error, so the helo stage defers (451 4.3.0) every time (make it a rule) [action-verdict]
-- expect: 17:5: warning: rule 'after the action' never runs: action 'wrong' (line 16) ends the helo stage in an error every time [unreachable-entry]
-- expect: 23:5: warning: rule 'behind the branches' never runs: rule 'every branch decides' (line 20) returns a verdict every time the authenticate stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 30:5: warning: rule 'behind it' never runs: rule 'logs then accepts' (line 26) returns accept() every time the mail stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
-- expect: 40:5: warning: rule 'behind the loop' never runs: rule 'loop then decide' (line 36) returns accept() every time the rcpt stage runs, and its verdict ends the stage (put it last, or give it a condition) [unreachable-entry]
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
  authenticate = {
    rule("every branch decides", function(ctx)
      if ctx.auth then return accept() else return reject() end
    end),
    rule("behind the branches", function(ctx) end),
  },
  mail = {
    rule("logs then accepts", function(ctx)
      log.info("mail from " .. ctx.mail_from.address)
      return accept()
    end),
    rule("behind it", function(ctx) end),
  },
  rcpt = {
    rule("maybe", function(ctx) if ctx.rcpt.local_part == "x" then return accept() end end),
    rule("returns a value of its own", function(ctx) local v = accept() return v end),
    rule("forever", function(ctx) while true do end end),
    rule("loop then decide", function(ctx)
      for _, r in ipairs(ctx.rcpts) do log.info(r.address) end
      return accept()
    end),
    rule("behind the loop", function(ctx) end),
  },
  -- Two functions start on one line: which is an entry's cannot be told, so nothing is said.
  data = { rule("d", function(ctx) return accept() end) }, preq = { rule("p1", function(ctx) end),
    rule("p2", function(ctx) end) },
}
