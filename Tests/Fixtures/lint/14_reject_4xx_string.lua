-- expect: 4:36: error: reject() takes a 5xx reply, got 451 [invalid-reply]
return {
  rcpt = {
    rule("r", function(ctx) return reject("451 4.4.3 try later") end),
  },
}
