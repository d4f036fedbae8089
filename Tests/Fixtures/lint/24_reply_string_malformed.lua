-- expect: 4:36: error: invalid reply "5.7.1 denied" (expected "CODE X.Y.Z text", e.g. "550 5.7.1 Access denied") [invalid-reply]
return {
  connect = {
    rule("r", function(ctx) return reject("5.7.1 denied") end),
  },
}
