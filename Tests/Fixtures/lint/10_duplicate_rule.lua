-- expect: 5:5: error: duplicate rule name 'sane helo' in stage 'helo' [duplicate-rule]
return {
  helo = {
    rule("sane helo", function(ctx) end),
    rule("sane helo", function(ctx) end),
  },
}
