-- expect: 5:21: error: reply text may not contain CR, LF or NUL [invalid-reply]
return {
  rcpt = {
    rule("r", function(ctx)
      return reject(reply(550, "5.7.1", "no\r\nMAIL FROM:<x>"))
    end),
  },
}
