-- expect: 4:38: error: unknown field 'inof' of 'log' (did you mean 'info'?) [unknown-member]
return {
  connect = {
    action("note", function(ctx) log.inof("client", ctx.client.ip) end),
  },
}
