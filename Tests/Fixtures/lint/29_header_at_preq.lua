-- expect: 11:7: warning: a header added at preq ('named') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 16:7: warning: a header added at preq ('called', in a function it calls) cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 24:33: warning: a header added at preq ('through a table', in a function it calls) cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 35:11: warning: a header added at preq ('literal') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- expect: 38:38: warning: a header added at preq ('nested') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
local function stamp(ctx)
  ctx.add_header("X-Stamp", "1")
end

local function late(ctx)
  ctx.add_header("X-Late", "1")
end

local function deeper(ctx, n)
  if n > 0 then return deeper(ctx, n - 1) end
  ctx.add_header("X-Deeper", "1")
end

local function through(ctx)
  deeper(ctx, 2)
end

local helpers = {}
function helpers.other(ctx) ctx.add_header("X-Other", "1") end

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
    rule("called", function(ctx) through(ctx) end),
    rule("through a table", function(ctx) helpers.other(ctx) end),
    rule("no header", function(ctx) log.info("end of data") end),
  },
}
