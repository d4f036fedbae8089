-- expect: 9:7: warning: a header added at preq ('named') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 21:11: warning: a header added at preq ('literal') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 24:38: warning: a header added at preq ('nested') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
local function stamp(ctx)
  ctx.add_header("X-Stamp", "1")
end

local function late(ctx)
  ctx.add_header("X-Late", "1")
end

return {
  rcpt = {
    rule("on time", function(ctx) ctx.add_header("X-Rcpt", "1") end),
  },
  data = {
    rule("also on time", stamp),
  },
  preq = {
    rule("literal", function(ctx)
      ctx.add_header("X-Literal", "1")
    end),
    rule("nested", function(ctx)
      local add = function(n, v) ctx.add_header(n, v) end
      add("X-Nested", "1")
    end),
    rule("named", late),
    rule("no header", function(ctx) log.info("end of data") end),
  },
}
