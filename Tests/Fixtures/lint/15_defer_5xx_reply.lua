-- expect: 4:36: error: defer() takes a 4xx reply, got 550 [invalid-reply]
return {
  rcpt = {
    rule("r", function(ctx) return defer(reply(550, "5.7.1", "no")) end),
  },
}
