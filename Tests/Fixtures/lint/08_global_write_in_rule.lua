-- expect: 4:35: error: assignment to global 'seen' inside a function: globals are read-only while rules run (use ctx.vars or a local) [global-write]
return {
  connect = {
    action("count", function(ctx) seen = (ctx.vars.seen or 0) + 1 end),
  },
}
