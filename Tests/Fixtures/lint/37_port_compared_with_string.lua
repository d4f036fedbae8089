-- expect: 14:52: error: 'ctx.server.port' is a number: compared with the string "587" it is never equal (write 587 without quotes) [number-compared-with-string]
-- expect: 15:43: error: 'ctx.client.port' is a number: compared with the string "25" it is never equal (write 25 without quotes) [number-compared-with-string]
-- expect: 16:54: error: 'ctx.server.port' is a number: compared with the string "1024" it raises an error when the rule runs (write 1024 without quotes) [number-compared-with-string]
-- expect: 17:47: error: 'ctx.server.port' is a number: compared with the string "submission" it is never equal [number-compared-with-string]
-- expect: 24:21: error: 'ctx.server.port' is a number: compared with the string "465" it is never equal (write 465 without quotes) [number-compared-with-string]
-- Postfix sends ports as text, but ctx.client.port and ctx.server.port are integers: Lua's ==
-- between a number and a string is false, and < raises. Comparisons with numbers, and with
-- fields that are strings, are silent.
local function is_smtps(ctx)
  return ctx.server.port == 465
end
return {
  connect = {
    rule("submission", function(ctx) if ctx.server.port == "587" then return accept() end end),
    rule("relay", function(c) if c.client.port ~= "25" then return end end),
    rule("low", function(ctx) if "1024" > ctx.server.port then return defer() end end),
    rule("named", function(ctx) if ctx.server.port == "submission" then return accept() end end),
    rule("numbers", function(ctx) if ctx.server.port == 587 or ctx.client.port < 1024 then return accept() end end),
    rule("strings", function(ctx) if ctx.helo == "587" or ctx.client.ip == "25" or ctx.stage == "connect" then return end end),
    rule("helper", function(ctx) if is_smtps(ctx) then return accept() end end),
  },
  helo = {
    rule("helper with a string", function(ctx)
      if ctx.server.port == "465" then return reject() end
    end),
  },
}
