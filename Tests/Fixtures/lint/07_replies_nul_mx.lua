-- expect: 6:88: error: unknown field 'nul_mx' of 'replies' (did you mean 'null_mx'?) [unknown-member]
return {
  mail = {
    rule("null mx", function(ctx)
      if ctx.mail_from.address == "" then return end
      if dns.locate_mx(ctx.mail_from.domain).kind == "null" then return reject(replies.nul_mx) end
    end),
  },
}
