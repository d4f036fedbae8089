-- expect: 4:3: error: unknown stage 'rpct' (did you mean 'rcpt'?) (stages: connect, helo, authenticate, mail, rcpt, data, preq) [unknown-stage]
return {
  connect = {},
  rpct = {
    rule("r", function(ctx) end),
  },
}
