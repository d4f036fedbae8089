-- expect: 6:43: error: reply code 550 does not match enhanced status code 4.7.1 (a 5xx reply needs 5.x.x) [invalid-reply]
-- expect: 7:5: error: duplicate rule name 'a' in stage 'connect' [duplicate-rule]
-- expect: 11:5: error: duplicate rule name 'b' in stage 'helo' [duplicate-rule]
return {
  connect = {
    rule("a", function(ctx) return reject(reply(550, "4.7.1", "x")) end),
    rule("a", function(ctx) return accept() end),
  },
  helo = {
    rule("b", function(ctx) return reject(reply(550, "5.7.1", "x")) end),
    rule("b", function(ctx) return accept() end),
  },
}
