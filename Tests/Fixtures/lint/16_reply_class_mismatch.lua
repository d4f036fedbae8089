-- expect: 4:43: error: reply code 550 does not match enhanced status code 4.4.3 (a 5xx reply needs 5.x.x) [invalid-reply]
return {
  rcpt = {
    rule("r", function(ctx) return reject(reply(550, "4.4.3", "no")) end),
  },
}
