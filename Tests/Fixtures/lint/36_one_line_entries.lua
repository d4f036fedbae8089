-- expect: 7:11: warning: a header added at preq ('stamp') cannot reach the message: Postfix adds no header at end of data: add it at rcpt or data [header-at-preq]
-- A header added at data on the line where a preq entry starts: which function is the
-- preq entry's cannot be told from the line, so the data header is not taken for a preq one.
return {
  data = { rule("d", function(ctx) ctx.add_header("X-Data", "1") end) }, preq = { rule("p", function(ctx) end),
    rule("stamp", function(ctx)
      ctx.add_header("X-Late", "1")
    end),
  },
}
