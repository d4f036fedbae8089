-- expect: 7:8: error: unexpected symbol near ')' [syntax-error]
return {
  connect = {
    rule("open", function(ctx)
      if ctx.client.ip then
        return accept()
    end),
  },
}
