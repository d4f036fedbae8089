-- expect: 4:36: error: unknown field 'execute' of 'os' [unknown-member]
return {
  connect = {
    action("run", function(ctx) os.execute("true") end),
  },
}
