-- expect: 4:36: error: accept() takes a 2xx or 3xx reply, got 550 [invalid-reply]
return {
  connect = {
    rule("r", function(ctx) return accept("550 5.7.1 no") end),
  },
}
