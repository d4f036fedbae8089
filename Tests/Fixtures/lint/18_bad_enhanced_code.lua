-- expect: 4:43: error: invalid enhanced status code "5.71" (expected class.subject.detail, e.g. "5.7.1") [invalid-reply]
return {
  mail = {
    rule("r", function(ctx) return reject(reply(550, "5.71", "no")) end),
  },
}
