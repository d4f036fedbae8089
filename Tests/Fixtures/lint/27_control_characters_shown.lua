-- expect: 6:7: error: unknown field 'look\u{1B}[2J\nother.lua:9:9: error: forged' of 'dns' [unknown-member]
-- A string key with a terminal escape and a newline that would forge a diagnostic line.
return {
  connect = {
    rule("odd", function(ctx)
      return dns["look\27[2J\nother.lua:9:9: error: forged"](ctx.client.ip)
    end),
  },
}
