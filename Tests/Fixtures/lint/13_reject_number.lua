-- expect: 4:36: error: expected a reply (reply(...), a "CODE X.Y.Z text" string or a replies constant), got number [invalid-reply]
return {
  rcpt = {
    rule("r", function(ctx) return reject(451, "4.4.3", "try later") end),
  },
}
